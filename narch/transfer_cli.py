"""`narch transfer`: the few-shot transfer board (predictors/fewshot_board.py): parse, call, write, print."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from narch.console import OUT, fail, guarded
from narch.core.checks import check_int, check_out_folder


def _ints(name: str, text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise fail(f"{name} must be comma-separated integers, got {text!r}") from None
    if not values or min(values) < 3:
        raise fail(f"{name} needs integers >= 3, got {text!r}")
    return values


@guarded
def transfer_cmd(
    devices: Annotated[list[Path], typer.Argument(help="corpus folders, one per device (a folder of them adds each)")],
    targets: Annotated[str, typer.Option(help="comma-separated target devices (folder names)")],
    k: Annotated[str, typer.Option(help="comma-separated numbers of measured target networks")] = "10,20,50,100",
    seeds: Annotated[int, typer.Option(help="random draws of the k networks per target")] = 5,
    modes: Annotated[str, typer.Option(help="comma-separated: prior, roofline, blend")] = "prior,roofline,blend",
    sources: Annotated[str, typer.Option(help="rest: learn from the non-target devices (HELP); others: from "
                                              "every device but the target (leave-one-out)")] = "rest",
    target_col: Annotated[str, typer.Option("--target-col", help="time column, or auto")] = "auto",
    out: Annotated[Path, typer.Option(help="board folder")] = Path("runs/transfer/board"),
) -> None:
    """Few-shot time transfer to new devices: learn from source devices, adapt from k measured networks."""
    from narch.core.files import atomic_write_json, atomic_write_text
    from narch.core.provenance import provenance
    from narch.predictors.fewshot import MODES
    from narch.predictors.fewshot_board import board_markdown, load_devices, plot_board, run_board, summary

    check_out_folder("--out", out)
    check_int("--seeds", seeds, low=1, high=1000)
    ks = _ints("--k", k)
    mode_list = [m.strip() for m in modes.split(",") if m.strip()]
    if bad := [m for m in mode_list if m not in MODES]:
        raise fail(f"--modes: {', '.join(bad)} not one of {', '.join(MODES)}")
    if sources not in ("rest", "others"):
        raise fail(f"--sources must be rest or others, got {sources!r}")
    target_list = [t.strip() for t in targets.split(",") if t.strip()]
    devs = load_devices(devices, target=target_col)
    load = os.getloadavg()[0]
    board = run_board(devs, target_list, ks=ks, seeds=seeds, modes=mode_list, sources=sources)  # type: ignore[arg-type]
    out.mkdir(parents=True, exist_ok=True)
    prov = provenance(load_avg_1m_before=load, load_avg_1m_after=os.getloadavg()[0],
                      devices={n: {"rows": d.rows.height, "unit": d.target} for n, d in devs.items()},
                      targets=target_list, k=ks, seeds=seeds, modes=mode_list, sources=sources)
    atomic_write_json(out / "board.json", board.to_dicts())
    atomic_write_json(out / "summary.json", summary(board).to_dicts())
    atomic_write_json(out / "provenance.json", prov)
    text = board_markdown(board)
    atomic_write_text(out / "board.md", f"# Few-shot transfer board\n\nMade by `{prov['command']}` at git "
                      f"revision `{prov['git_rev']}` on host `{prov['host']}`.\n\n{text}")
    plot_board(board, out / "board.png")
    OUT.print(text, highlight=False, markup=False)
    OUT.print(f"written: {out}/board.md, board.json, summary.json, board.png, provenance.json", highlight=False)
