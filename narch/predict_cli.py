"""`narch leaderboard` and `narch predict`: parse, call one library function, print."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from narch.console import ERR, OUT, Plugins, guarded, load_plugins
from narch.core.checks import check_int, csv_items, name_value_pairs
from narch.core.errors import SettingError
from narch.core.store import as_location, open_store
from narch.core.tables import markdown_table

if TYPE_CHECKING:
    from narch.predictors.leaderboard import LeaderboardPlan
    from narch.search_space import Network


def _int(text: str, option: str) -> int:
    """An integer of a list option ('all' is the whole pool, -1)."""
    if text == "all":
        return -1
    try:
        return int(text)
    except ValueError:
        raise SettingError(f"{option}: {text[:40]!r} is not an integer") from None


# Test architectures per seed below which a leaderboard's ranking is noise: one swapped pair moves Kendall tau by
# 2/190 ~ 0.01 among 20, by 2/15 ~ 0.13 among 6. (Its home is predictors/protocol.py, next to make_splits.)
MIN_TEST_ARCHS = 20


def warn(text: str) -> None:
    """``warning: <text>`` as one line on stderr."""
    ERR.print(f"warning: {' '.join(text.split())}", markup=False, highlight=False, soft_wrap=True)


def small_test_set(plan: LeaderboardPlan, *, freeze: bool) -> str | None:
    """A line naming each target whose test set has fewer than MIN_TEST_ARCHS architectures per seed, or None."""
    small = {t: len(tp.splits[0].test) for t, tp in plan.targets.items()
             if tp.splits and len(tp.splits[0].test) < MIN_TEST_ARCHS}
    if not small:
        return None
    sizes = ", ".join(f"{n} ({t})" for t, n in small.items())
    then = " and so is the choice of the frozen predictor" if freeze else ""
    return (f"the leaderboard's test set holds {sizes} architectures per seed, fewer than {MIN_TEST_ARCHS}: its "
            f"ranking is noise{then} (a fifth of the architectures is tested: {5 * MIN_TEST_ARCHS} give "
            f"{MIN_TEST_ARCHS})")


@guarded(resume="finished cells are saved in OUT/cells; rerun the same command to resume")
def leaderboard_cmd(
    corpus: Annotated[str, typer.Option(help="corpus folder, or an object store's URL (s3://bucket/prefix)")],
    out: Annotated[Path, typer.Option(help="output folder (leaderboard.md, parquet, plots, splits, frozen/)")],
    target: Annotated[str, typer.Option(help="comma-separated target columns")] = "val_acc,train_time_s",
    predictors: Annotated[str | None, typer.Option(help="comma-separated families (default: all registered)")] = None,
    trials: Annotated[int, typer.Option(help="Optuna trials per cell (0: family defaults)")] = 10,
    seeds: Annotated[int, typer.Option(help="split seeds (the protocol asks for >= 5)")] = 5,
    sizes: Annotated[str | None, typer.Option(help="comma-separated training sizes (default 16..1024 and all)")] = None,
    no_all: Annotated[bool, typer.Option("--no-all", help="leave out the whole-pool size")] = False,
    max_test: Annotated[int, typer.Option(help="most test architectures per seed")] = 1000,
    quick: Annotated[bool, typer.Option(help="sizes 16, 64, 256, 1024 and all only")] = False,
    freeze: Annotated[bool, typer.Option(help="freeze each target's best family into OUT/frozen")] = True,
    where: Annotated[str | None, typer.Option(help="row filters COL=VALUE[,COL=VALUE] (e.g. epochs=200)")] = None,
    family_trials: Annotated[str | None, typer.Option(help="per-family trials NAME=N[,NAME=N]")] = None,
    family_sizes: Annotated[str | None, typer.Option(
        help="sizes a family is limited to NAME=16:128[,NAME=...]; 'all' is the whole pool")] = None,
    refreeze: Annotated[bool, typer.Option("--refreeze", help="only redo the freezing step of a finished run in OUT")
                        ] = False,
    freeze_family: Annotated[str | None, typer.Option(
        help="only freeze this family for every target it models into OUT/frozen (no ranking; --trials 0: its "
             "defaults)")] = None,
    restart: Annotated[bool, typer.Option("--restart", help="drop the finished cells in OUT/cells and start over")
                       ] = False,
    plugin: Plugins = None,
) -> None:
    """Rank every predictor family on a corpus under the fixed protocol; freeze the best per target."""
    from narch.core.progress import track
    from narch.predictors.leaderboard import (
        SIZES,
        LeaderboardConfig,
        freeze_with,
        load_rows,
        open_cells,
        plan_leaderboard,
    )
    from narch.predictors.leaderboard_report import build_leaderboard
    from narch.predictors.leaderboard_report import refreeze as redo

    load_plugins(plugin)
    size_list = tuple(_int(s, "--sizes") for s in csv_items(sizes, "--sizes") or ()) or SIZES
    cfg = LeaderboardConfig(
        corpus=as_location(corpus), out=out, targets=csv_items(target, "--target") or (),
        predictors=csv_items(predictors, "--predictors"),
        seeds=seeds, trials=trials, sizes=size_list, include_all=not no_all, max_test=max_test, quick=quick,
        freeze=freeze, command=shlex.join(["narch", *sys.argv[1:]]), where=name_value_pairs(where, "--where"),
        family_trials={k: _int(v, "--family-trials") for k, v in
                       name_value_pairs(family_trials, "--family-trials").items()},
        family_sizes={k: tuple(_int(x, "--family-sizes") for x in v.split(":")) for k, v in
                      name_value_pairs(family_sizes, "--family-sizes").items()},
        restart=restart,
    )
    if not open_store(cfg.corpus).is_folder():
        raise FileNotFoundError(f"{cfg.corpus}: no such corpus folder")
    if refreeze and freeze_family:
        raise SettingError("--refreeze and --freeze-family exclude each other")
    if refreeze:
        frozen = redo(cfg)
    elif freeze_family:
        frozen = freeze_with(cfg, load_rows(cfg), family=freeze_family)
    else:
        plan = plan_leaderboard(cfg)
        store = open_cells(cfg, plan)  # refuses foreign cells before anything is shown or written
        if (small := small_test_set(plan, freeze=cfg.freeze)) is not None:
            warn(small)
        with track(ERR, "leaderboard", plan.total_cells, unit="cells") as bar:
            res, _ = build_leaderboard(cfg, plan, store=store, progress=lambda d, k: bar.advance(k, note=d))
        OUT.print(f"{out}/leaderboard.md written ({res.cells.height} cells, {res.wall_s:.0f} s)", highlight=False)
        frozen = res.frozen
    for t, fam in frozen.items():
        OUT.print(f"frozen {t}: {fam} -> {out}/frozen", highlight=False)
    if frozen:
        from narch.predictors.artefacts import artefact_digest

        OUT.print(f"{out}/frozen sha256 {artefact_digest(out / 'frozen')}", highlight=False)


def _networks(arch: str | None, archs_from: Path | None) -> list[Network]:
    """The one network of --arch or every network of --archs-from (errors name the file and the line)."""
    from narch.search_space import load_networks, resolve_network

    if arch is not None and archs_from is not None:
        raise SettingError("--arch and --archs-from exclude each other")
    if arch is not None:
        return [resolve_network(arch)]
    if archs_from is not None:
        return load_networks(archs_from)
    raise SettingError("give one of --arch and --archs-from")


@guarded
def predict_cmd(
    predictor: Annotated[Path, typer.Option(help="predictor artefact folder (e.g. a leaderboard's frozen/)")],
    arch: Annotated[str | None, typer.Option(help="seed network name or a JSON file holding one network")] = None,
    archs_from: Annotated[Path | None, typer.Option(
        help="every network of a .jsonl file (one network JSON a line, as build --archs-from reads) or of a .json "
             "list, printed as a table")] = None,
    task: Annotated[str | None, typer.Option(
        help="task whose input shape and size to assume (a task other than the one the predictor was fitted on "
             "warns on stderr: its predictions are extrapolations)")] = None,
    n_train: Annotated[int | None, typer.Option(help="training-set size")] = None,
    epochs: Annotated[int | None, typer.Option(help="training epochs")] = None,
    batch_size: Annotated[int | None, typer.Option(help="training batch size")] = None,
    expect_sha256: Annotated[str | None, typer.Option(
        help="refuse the artefact unless its sha256 (its manifest's, printed when it was frozen) is this")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON document instead of text")] = False,
    plugin: Plugins = None,
) -> None:
    """Print every target's prediction of a frozen predictor for one network or a file of them."""
    from narch.predictors.artefacts import load_artefact
    from narch.query import prediction_frame, task_descriptors, task_mismatch

    overrides = {"n_train": n_train, "epochs": epochs, "batch_size": batch_size}
    for k, v in overrides.items():
        if v is not None:
            check_int(f"--{k.replace('_', '-')}", v, low=1)
    nets = _networks(arch, archs_from)
    load_plugins(plugin)
    art = load_artefact(predictor, expect_sha256=expect_sha256)
    if (mismatch := task_mismatch(art.manifest, task)) is not None:
        warn(f"{predictor}: {mismatch}")
    d = task_descriptors(art.manifest, task, overrides)
    frame = prediction_frame(art, nets, d)
    families = {t: e["predictor"] for t, e in art.manifest["entries"].items()}
    if json_out:
        import polars.selectors as cs

        doc = {"predictor": str(predictor), "sha256": art.digest, "descriptors": d, "families": families,
               "predictions": frame.with_columns(cs.float().fill_nan(None)).to_dicts()}  # strict JSON: NaN as null
        typer.echo(json.dumps(doc, allow_nan=False))
    elif arch is not None:
        OUT.print(f"{nets[0].arch_id} ({len(nets[0])} layers) under {d}", highlight=False)
        for t, fam in families.items():
            spread = f" ± {frame[f'{t}_std'][0]:.3g}" if f"{t}_std" in frame.columns else ""
            OUT.print(f"{t}: {frame[t][0]:.6g}{spread}  ({fam})", highlight=False)
    else:
        fams = ", ".join(f"{t}: {f}" for t, f in families.items())
        typer.echo(f"{len(nets)} networks from {archs_from} ({fams}) under {d}")
        typer.echo(markdown_table(frame, floats=6))
