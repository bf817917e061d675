"""Few-shot transfer to a new device: synthetic devices whose times are real networks' roofline terms under
device-specific rates, so the target is related to the sources the way real devices are (shared op costs, device
rates), and the checks can fail: the learned prior must beat fitting the k networks alone, a network no source
measured must still be predicted, and bad requests fail in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy.stats import spearmanr
from typer.testing import CliRunner

from narch.cli import app
from narch.predictors.fewshot import DeviceTimes, FewShotTransfer, Prior, TransferError
from narch.predictors.fewshot_board import board_markdown, load_devices, run_board
from narch.predictors.roofline_time import terms_for
from narch.search_space import plan_networks

DESC = {"input_shape": [1, 40], "n_classes": 10}


def _devices(n_nets: int = 80, n_dev: int = 5, seed: int = 0) -> tuple[pl.DataFrame, dict[str, DeviceTimes]]:
    rng = np.random.default_rng(seed)
    nets = [p.net.to_json() for p in plan_networks(n_nets, seed)]
    terms = np.array([terms_for(j, "latency_bs1_ms", DESC) for j in nets])
    base = rng.uniform(0.5, 2.0, terms.shape[1]) / np.maximum(terms.mean(0), 1e-12)
    frame = pl.DataFrame({"arch_id": [f"a{i:03d}" for i in range(n_nets)], "arch_json": nets,
                          "input_shape": [DESC["input_shape"]] * n_nets, "n_classes": [10] * n_nets})
    devices = {}
    for d in range(n_dev):
        coef = base * np.exp(rng.normal(0, 0.6, terms.shape[1]))  # each device: its own rate per term
        t = terms @ coef * np.exp(rng.normal(0, 0.02, n_nets))
        devices[f"dev{d}"] = DeviceTimes.from_rows(frame.with_columns(pl.Series("latency_bs1_ms", t)),
                                                   name=f"dev{d}")
    return frame, devices


def test_learned_prior_beats_the_k_networks_alone() -> None:
    _, devs = _devices()
    target = devs.pop("dev4")
    model = FewShotTransfer(list(devs.values()))
    assert model.prior.learned and model.prior.mean.shape == (4,)
    rows = target.rows
    shot, test = rows[:8], rows[8:]
    y = test["latency_bs1_ms"].to_numpy()
    rho = {m: spearmanr(model.adapt(shot, "latency_bs1_ms", mode=m).predict(test), y).statistic
           for m in ("prior", "roofline", "blend")}
    assert rho["prior"] > 0.9, rho
    assert rho["blend"] >= min(rho["prior"], rho["roofline"]) - 0.02, rho


def test_a_network_no_source_measured_is_predicted_by_the_fallback() -> None:
    _, devs = _devices(n_nets=60)
    target = devs.pop("dev4")
    cut = {n: DeviceTimes(d.name, d.target, d.rows.filter(pl.col("arch_id") != "a059")) for n, d in devs.items()}
    model = FewShotTransfer(list(cut.values()))
    z = model.features(target.rows.filter(pl.col("arch_id") == "a059"))
    assert np.isfinite(z).all() and z.shape == (1, 4)
    pred = model.adapt(target.rows[:10], "latency_bs1_ms", mode="prior").predict(target.rows[-1:])
    assert np.isfinite(pred).all() and pred[0] > 0


def test_prior_without_shared_networks_is_plain_shrinkage() -> None:
    p = Prior.learn(np.zeros((3, 4)))
    assert not p.learned and np.allclose(p.mean, 0) and np.allclose(p.cov, np.eye(4))


def test_bad_requests_fail_in_one_line() -> None:
    _, devs = _devices(n_nets=30)
    target = devs.pop("dev4")
    model = FewShotTransfer(list(devs.values()))
    with pytest.raises(TransferError, match="at least 3 measured networks"):
        model.adapt(target.rows[:2], "latency_bs1_ms")
    with pytest.raises(TransferError, match="mode 'magic'"):
        model.adapt(target.rows[:5], "latency_bs1_ms", mode="magic")  # type: ignore[arg-type]
    bad = target.rows[:5].with_columns(pl.lit(-1.0).alias("latency_bs1_ms"))
    with pytest.raises(TransferError, match="must be positive"):
        model.adapt(bad, "latency_bs1_ms")
    with pytest.raises(TransferError, match="no time column"):
        DeviceTimes.from_rows(pl.DataFrame({"arch_id": ["a"], "arch_json": ["{}"]}), name="x")
    with pytest.raises(TransferError, match="at least one source"):
        FewShotTransfer([])


def test_board_scores_every_target_k_seed_and_mode() -> None:
    _, devs = _devices(n_nets=50)
    board = run_board(devs, ["dev3", "dev4"], ks=[5, 10], seeds=2, modes=["prior", "blend"], log=lambda m: None)
    assert board.height == 2 * 2 * 2 * 2
    assert set(board["n_sources"].to_list()) == {3}, "HELP protocol: targets never teach each other"
    assert (board["n_test"] == 50 - board["k"]).all()
    loo = run_board(devs, ["dev4"], ks=[5], seeds=1, sources="others", log=lambda m: None)
    assert set(loo["n_sources"].to_list()) == {4}
    assert "### k = 10" in board_markdown(board)
    with pytest.raises(TransferError, match="not among"):
        run_board(devs, ["nope"], ks=[5], log=lambda m: None)
    with pytest.raises(TransferError, match="only 50 networks"):
        run_board(devs, ["dev4"], ks=[49], log=lambda m: None)


ECNAS = sorted((Path(__file__).parents[2] / "results" / "corpus").glob("ecnas_4v_*"))
ECNAS = [p for p in ECNAS if "all_budgets" not in p.name]


def test_cli_writes_the_board_and_refuses_bad_settings(tmp_path: Path) -> None:
    """On the committed EC-NAS training times of four GPUs (real measurements), leave-one-device-out."""
    assert len(ECNAS) == 4
    devs = load_devices(ECNAS)
    assert {d.target for d in devs.values()} == {"train_time_s"}
    out = tmp_path / "board"
    runner = CliRunner()
    folders = [str(p) for p in ECNAS]
    res = runner.invoke(app, ["transfer", *folders, "--targets", "ecnas_4v_titanxp", "--k", "10", "--seeds", "2",
                              "--sources", "others", "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = json.loads((out / "summary.json").read_text())
    prior = next(r for r in rows if r["mode"] == "prior")
    assert prior["spearman"] > 0.9, "the Titan Xp's times follow the other GPUs' closely"
    for f in ("board.md", "board.json", "summary.json", "board.png", "provenance.json"):
        assert (out / f).is_file(), f
    assert "git revision" in (out / "board.md").read_text()
    for args, msg in ((["--k", "2"], "--k needs integers >= 3"), (["--k", "x"], "--k must be comma-separated"),
                      (["--modes", "magic"], "--modes: magic"), (["--sources", "all"], "--sources must be")):
        bad = runner.invoke(app, ["transfer", *folders, "--targets", "ecnas_4v_titanxp",
                                  "--out", str(tmp_path / "bad"), *args])
        assert bad.exit_code != 0 and len(bad.output.strip().splitlines()) == 1, bad.output
        assert msg in bad.output, bad.output
    assert not (tmp_path / "bad").exists()
