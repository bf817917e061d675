"""Reward engine: penalty shapes, MnasNet factors, TOML parsing and one-line config errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from narch.controller.reward import Penalty, RewardConfig, RewardConfigError, load_reward, parse_reward


def test_linear_penalty_is_zero_below_threshold_and_piecewise_linear_past_knees() -> None:
    p = Penalty(threshold=100.0, weight=2.0, knees=(1.0, 2.0), slopes=(1.0, 3.0))
    x = np.array([0.0, 50.0, 100.0, 150.0, 200.0, 300.0])
    got = p.linear(x)
    # ratio r: 0, .5, 1, 1.5, 2, 3 -> sum slope*max(0, r - knee): 0, 0, 0, .5, 1, 2 + 3
    np.testing.assert_allclose(got, 2.0 * np.array([0, 0, 0, 0.5, 1.0, 5.0]))
    slopes = np.diff(got) / np.diff(x)
    assert slopes[3] < slopes[4], "the second knee makes the penalty steeper"


def test_linear_reward_combines_weighted_accuracy_and_penalties() -> None:
    cfg = RewardConfig(w_acc=2.0, size=Penalty(threshold=10.0, weight=1.0), time=Penalty(threshold=1.0, weight=0.5))
    r = cfg.reward(np.array([0.9, 0.9]), np.array([5.0, 20.0]), np.array([0.5, 3.0]))
    np.testing.assert_allclose(r, [1.8, 1.8 - 1.0 - 0.5 * 2.0])


def test_guard_subtracts_lambda_times_std() -> None:
    cfg = RewardConfig(size=Penalty(threshold=1e9), time=Penalty(threshold=1e9), lambda_std=2.0)
    r = cfg.reward(np.array([0.9]), np.array([1.0]), np.array([1.0]), acc_std=np.array([0.05]))
    np.testing.assert_allclose(r, [0.8])


def test_mnas_soft_and_hard_shapes() -> None:
    soft = RewardConfig(kind="mnas_soft", size=Penalty(threshold=100.0), time=Penalty(threshold=1.0, weight=0.0))
    acc = np.full(3, 0.8)
    r = soft.reward(acc, np.array([50.0, 100.0, 200.0]), np.ones(3))
    np.testing.assert_allclose(r, 0.8 * np.array([0.5, 1.0, 2.0]) ** -0.07)
    hard = RewardConfig(kind="mnas_hard", size=Penalty(threshold=100.0), time=Penalty(threshold=1.0, weight=0.0))
    r = hard.reward(acc, np.array([50.0, 100.0, 200.0]), np.ones(3))
    np.testing.assert_allclose(r, [0.8, 0.8, 0.4])  # no bonus below, 1/ratio above


def test_median_thresholds_are_resolved_from_the_corpus() -> None:
    cfg = parse_reward({"reward": {"size": {"weight": 1.0}}}).resolved(median_size_bytes=123.0, median_time_s=4.5)
    assert cfg.size.threshold == 123.0 and cfg.time.threshold == 4.5


def test_toml_file_round_trip(tmp_path: Path) -> None:
    f = tmp_path / "r.toml"
    f.write_text(
        '[reward]\nkind = "linear"\nw_acc = 1.5\n[reward.size]\nthreshold_bytes = 16000000\nweight = 0.3\n'
        '[reward.time]\nthreshold_s = "median"\nsource = "roofline"\ndevice = "t4"\n[guard]\nlambda_std = 1.0\n'
    )
    cfg = load_reward(f)
    assert (cfg.w_acc, cfg.size.threshold, cfg.size.weight) == (1.5, 16e6, 0.3)
    assert cfg.time.threshold is None and cfg.time_source == "roofline" and cfg.device == "t4"
    assert cfg.lambda_std == 1.0


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ({"reward": {"w_acc": 1.0, "colour": 3}}, "unknown key 'reward.colour'"),
        ({"rewards": {}}, "unknown key 'rewards'"),
        ({"reward": {"size": {"threshold_bytes": -1}}}, 'threshold_bytes (or "median") must be a finite number > 0'),
        ({"reward": {"time": {"threshold_s": -0.5}}}, 'reward.time.threshold_s (or "median") must be a finite number'),
        ({"reward": {"time": {"threshold_s": 0}}}, "must be a finite number > 0, got 0"),
        ({"reward": {"w_acc": 0, "size": {"weight": 0}, "time": {"weight": 0}}}, "all zero"),
        ({"reward": {"kind": "exotic"}}, "reward.kind must be one of"),
        ({"reward": {"size": {"slopes": [-1.0]}}}, "reward.size.slopes[0] must be a finite number >= 0, got -1.0"),
        ({"reward": {"time": {"source": "oracle"}}}, "reward.time.source must be one of"),
        ({"guard": {"lambda_std": -1}}, "guard.lambda_std must be a finite number >= 0, got -1"),
        ({"reward": {"size": {"knees": 5}}}, "reward.size.knees must be a list of numbers, got 5"),
        ({"reward": {"size": {"knees": [True]}}}, "reward.size.knees[0] must be a number, got True"),
        ({"reward": {"size": {"knees": "123"}}}, "reward.size.knees must be a list of numbers, got '123'"),
        ({"reward": {"size": {"knees": [2.0, 1.0], "slopes": [1, 1]}}}, "reward.size.knees must be ascending"),
        ({"reward": {"time": {"slopes": [float("inf")]}}}, "reward.time.slopes[0] must be a finite number >= 0"),
        ({"reward": {"w_acc": float("nan")}}, "reward.w_acc must be a finite number >= 0, got nan"),
        ({"reward": {"size": {"threshold_bytes": float("inf")}}}, "must be a finite number > 0, got inf"),
        ({"reward": {"size": {"alpha": float("-inf")}}}, "reward.size.alpha must be a finite number, got -inf"),
        ({"reward": {"accuracy": 5}}, "reward.accuracy must be a string, got 5"),
        ({"reward": 5}, "reward must be a table, got 5"),
        ({"guard": [1]}, "guard must be a table, got [1]"),
    ],
)
def test_config_errors_are_one_line_and_name_the_key(doc: dict, needle: str) -> None:
    with pytest.raises(RewardConfigError) as e:
        parse_reward(doc)
    msg = str(e.value)
    assert needle in msg and "\n" not in msg


def test_bad_toml_is_one_line(tmp_path: Path) -> None:
    f = tmp_path / "r.toml"
    f.write_text("[reward\nw_acc = ")
    with pytest.raises(RewardConfigError, match="not valid TOML"):
        load_reward(f)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"[reward.size]\nknees = 5\n", "r.toml: reward config: reward.size.knees must be a list of numbers"),
        (b"[reward]\nw_acc = nan\n", "r.toml: reward config: reward.w_acc must be a finite number"),
        (b"\xff\xfe[reward]\n", "r.toml: reward config is not UTF-8 text"),
        (b"[reward]\nw_acc = " + b"9" * 5000 + b"\n", "r.toml: reward config cannot be parsed (exceeds the limit"),
        (b"x = " + b"[" * 100_000 + b"\n", "r.toml: reward config cannot be parsed (nested too deeply)"),
    ],
    ids=["knees-int", "nan", "utf8", "huge-int", "deep"],
)
def test_file_errors_name_the_file_in_one_line(tmp_path: Path, body: bytes, needle: str) -> None:
    f = tmp_path / "r.toml"
    f.write_bytes(body)
    with pytest.raises(RewardConfigError) as e:
        load_reward(f)
    msg = str(e.value)
    assert msg.startswith(str(f)) and needle in msg and "\n" not in msg
