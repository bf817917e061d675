"""`narch run`: presets and the stage list."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console

from narch.pipeline.corpus_stage import HardwareResult, build_stage, hardware_stage, load_corpus
from narch.pipeline.leaderboard_stage import LeaderboardStageResult, leaderboard_stage
from narch.pipeline.report import write_report
from narch.pipeline.search_stage import SearchStageResult, search_stage
from narch.pipeline.stages import RunContext, Stage, StageRecord, loader, run_stages

# A preset is a declared experiment: it names its strategies, so installed plugins do not change what it runs.
PAPER_STRATEGIES = ["a2c", "reinforce", "random", "evolution", "local", "tpe"]
PRESETS: dict[str, dict[str, Any]] = {
    # ~10 minutes on 2 CPU cores, install included.
    "quick": {
        "corpus": {"task": "mnist1d", "archs": 120, "epochs": 5, "seed": 0},
        "leaderboard": {"targets": ["val_acc", "train_time_s"], "seeds": 3, "trials": 0, "quick": True},
        "search": {"budget": 300, "seeds": 3, "strategies": PAPER_STRATEGIES,
                   "hardware_compare": ["t4", "a100", "h200", "local"], "verify_top": 3},
    },
    # The reference scale (hours on 2 cores; resumable).
    "full": {
        "corpus": {"task": "mnist1d", "archs": 3000, "epochs": 10, "seed": 1},
        "leaderboard": {"targets": ["val_acc", "train_time_s"], "seeds": 5, "trials": 10},
        "search": {"budget": 2000, "seeds": 10, "strategies": PAPER_STRATEGIES,
                   "hardware_compare": ["t4", "a100", "h200", "local"], "verify_top": 5},
    },
    # For tests: seconds.
    "smoke": {
        "corpus": {"task": "mnist1d", "archs": 8, "epochs": 1, "seed": 0},
        "leaderboard": {
            "targets": ["val_acc", "train_time_s"],
            "seeds": 1,
            "trials": 0,
            "sizes": [4],
            "predictors": ["mean", "ridge", "gbdt"],
        },
        "search": {
            "budget": 40,
            "seeds": 1,
            "strategies": ["random", "evolution"],
            "hardware_compare": ["t4", "local"],
            "verify_top": 1,
        },
    },
}


def make_stages(preset: dict[str, Any]) -> list[Stage[Any]]:
    """The pipeline's stages for a preset, each with the typed loader of its result."""
    c, lb, se = preset["corpus"], preset["leaderboard"], preset["search"]
    return [
        Stage("corpus", partial(build_stage, cfg=c), load_corpus, c),
        Stage("hardware", partial(hardware_stage, cfg={"seed": 0}), loader(HardwareResult), {"corpus": c}),
        Stage("leaderboard", partial(leaderboard_stage, cfg=lb), loader(LeaderboardStageResult), [c, lb]),
        Stage("search", partial(search_stage, cfg=se), loader(SearchStageResult), [c, lb, se]),
    ]


def run_pipeline(out: Path, *, preset: str = "quick", console: Console | None = None) -> list[StageRecord]:
    """Run (or resume) every stage into ``out`` and write report.md / report.html."""
    if preset not in PRESETS:
        raise ValueError(f"preset {preset!r} is unknown (known: {', '.join(PRESETS)})")
    console = console or Console(stderr=True)
    ctx = RunContext(out=out, console=console)
    records = run_stages(make_stages(PRESETS[preset]), ctx)
    write_report(out, records, title=f"Neural Architect run ({preset})")
    return records
