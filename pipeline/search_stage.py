"""Pipeline stage: search on the frozen predictor (A2C and baselines), compare hardware, verify the best for real."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from narch.controller.run import execute
from narch.controller.session import SearchConfig
from narch.pipeline.stages import RunContext, Section


def _read(path: Path) -> str:
    return path.read_text() if path.is_file() else ""


def search_stage(ctx: RunContext, cfg: dict[str, Any]) -> tuple[dict[str, Any], Section]:
    """`narch search` with the preset's budget, hardware targets and verification, on this run's frozen predictor."""
    out = ctx.out / "search"
    sc = SearchConfig(
        predictor=Path(ctx.output("leaderboard", "frozen")),
        out=out,
        budget=cfg["budget"],
        seeds=cfg["seeds"],
        corpus=Path(ctx.output("corpus", "corpus")),
        hardware_compare=tuple(cfg.get("hardware_compare", ())),
        verify_top=cfg.get("verify_top", 0),
        verify_corpus=Path(ctx.output("corpus", "corpus")),
        command="narch run (search stage)",
        **({"strategies": tuple(cfg["strategies"])} if cfg.get("strategies") else {}),
    )
    summary = execute(sc, log=lambda s: ctx.console.print(s, highlight=False))
    parts = [
        "Best-so-far reward against predictor queries (mean and 95 % CI over seeds), final table and "
        "hypervolume of the Pareto front (accuracy, size, time):\n",
        _read(out / "final.md"),
    ]
    hw = sorted(out.rglob("hardware_compare.md"))
    if hw:
        parts += ["\n#### Hardware comparison: each target's winner on every target's roofline\n", _read(hw[0])]
    ver = sorted(out.rglob("verify.md"))
    if ver:
        parts += ["\n#### Verified by real training: predicted vs measured\n", _read(ver[0])]
    images = [str(p.relative_to(ctx.out)) for p in sorted(out.rglob("*.png"))]
    return {"folder": str(out), "final": summary.final.to_dicts()}, Section(
        "Search on the frozen predictor", "\n".join(parts), images=images
    )
