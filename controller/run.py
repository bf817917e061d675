"""`narch search` as a library function: load the predictor and corpus, run every strategy over seeds with one
query budget each, write the report; optionally compare hardware targets and verify the best by real training.

This module only orchestrates: the session types live in ``controller.session``, the report in
``controller.report``, and the two optional steps in ``controller.hardware_compare`` and ``controller.verify``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from narch.controller import report
from narch.controller.hardware_compare import HardwareComparison, compare_hardware
from narch.controller.report import SearchOutcome
from narch.controller.session import Log, SearchConfig, Setup, prepare, quiet, run_strategies
from narch.controller.verify import Verification, verify_top
from narch.core.provenance import provenance

__all__ = ["SearchRun", "execute", "saturation", "search_provenance"]

SATURATED_TOL = 1e-6  # relative: final best rewards closer than this are one value


@dataclass(frozen=True)
class SearchRun:
    """A whole `narch search`: the main search, the optional hardware comparison and verification, provenance."""

    search: SearchOutcome
    hardware: HardwareComparison | None
    verification: Verification | None
    provenance: dict[str, Any]

    @property
    def final(self) -> pl.DataFrame:
        """The main search's final table (one row per strategy)."""
        return self.search.final

    def summary(self) -> dict[str, Any]:
        """What summary.json holds."""
        out = self.search.summary()
        if (warning := saturation(self.final)) is not None:
            out["warnings"] = [warning]
        if self.hardware is not None:
            out["hardware_compare"] = self.hardware.table.to_dicts()
        if self.verification is not None:
            out["verify"] = self.verification.table.to_dicts()
        return out | {"provenance": self.provenance}


def saturation(final: pl.DataFrame) -> str | None:
    """A warning when every strategy ended on the same best reward in every seed (its ``min`` and ``max`` over seeds
    one value across strategies): the predictor saturates, so the search cannot tell the strategies apart."""
    if final.height < 2 or not {"min", "max"} <= set(final.columns):
        return None
    lo, hi = float(final["min"].min()), float(final["max"].max())  # type: ignore[arg-type]
    if hi - lo > SATURATED_TOL * max(1.0, abs(hi)):
        return None
    return (f"every strategy ended on the same best reward {hi:.6g} in every seed ({final.height} strategies): the "
            f"predictor saturates (each search finds networks at its ceiling), so this search cannot rank the "
            f"strategies; use a predictor with more spread at the top, a stricter reward, or a smaller budget")


def search_provenance(cfg: SearchConfig) -> dict[str, Any]:
    """The one provenance record, plus the torch threads the search ran with."""
    import torch

    return provenance(cfg.command or None, torch_threads=torch.get_num_threads())


def _config(cfg: SearchConfig, setup: Setup) -> dict[str, Any]:
    return {"search": {k: (str(v) if isinstance(v, Path) else v) for k, v in cfg.__dict__.items()},
            "reward": setup.reward.to_dict(), "task": setup.ctx.to_dict(), "predictor": setup.predictor_info,
            "corpus": str(setup.corpus), "time": setup.objectives.time_label, "start": setup.start.to_json()}


def execute(cfg: SearchConfig, log: Log = quiet, *, rows: pl.DataFrame | None = None) -> SearchRun:
    """The whole `narch search`: main search, optional hardware comparison and verification. ``rows``: the
    predictor's corpus when the caller already holds it (it is not read again)."""
    setup = prepare(cfg, rows=rows)
    cfg.out.mkdir(parents=True, exist_ok=True)
    prov = search_provenance(cfg)
    report.write_json(cfg.out / "config.json", _config(cfg, setup))
    report.write_json(cfg.out / "provenance.json", prov)
    log(f"reward: {setup.reward.kind}, size threshold {setup.reward.size.threshold:.0f} B, time threshold "
        f"{setup.reward.time.threshold:.3g} s ({setup.objectives.time_label})")
    results = run_strategies(cfg, setup, cfg.strategies, cfg.seeds, log=log)
    seeds = f"{cfg.seeds} seeds" + "".join(f", {k}: {v}" for k, v in cfg.strategy_seeds.items())
    outcome = report.write_search(
        cfg.out, results, budget=cfg.budget, size_ref=setup.reward.size.threshold or 1.0,
        time_ref=setup.reward.time.threshold or 1.0, best_k=max(5, cfg.verify_top),
        title=f"{', '.join(cfg.strategies)}: budget {cfg.budget}, {seeds}, time: {setup.objectives.time_label}")
    hardware = compare_hardware(cfg, setup, log=log) if cfg.hardware_compare else None
    verification = verify_top(cfg, setup, outcome.history, log=log) if cfg.verify_top else None
    run = SearchRun(outcome, hardware, verification, prov)
    if (warning := saturation(outcome.final)) is not None:
        log(f"warning: {warning}")
    report.write_json(cfg.out / "summary.json", run.summary())
    return run
