"""Fuzzed architecture and reward files through the command line: a valid result or one line naming the file,
never a traceback. Inputs are valid files with a few mutations (a value set to anything, a key deleted or added, the
text cut short, bytes that are not UTF-8, numbers beyond float or int limits, nesting thousands deep)."""

from __future__ import annotations

import copy
import json
import math
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from narch.cli import app
from narch.controller.reward import RewardConfig, RewardConfigError, load_reward
from tests.search_space.test_parse_fuzz import NETS, mutated

runner = CliRunner()
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HUGE = "HUGE-INT"  # stands for an integer of 5000 digits (Python's str/int conversion refuses over 4300)


def _one_line_or_ok(res: Result, path: Path) -> None:
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    if res.exit_code == 0:
        return
    assert res.exit_code == 2, res.output
    line = res.stderr.strip()
    assert len(line.splitlines()) == 1 and line.startswith("narch: error: "), res.stderr
    return


@st.composite
def damaged(draw: st.DrawFn, text: str) -> bytes:
    """The text as bytes, sometimes cut short, wrapped in deep nesting, given a huge number, or broken UTF-8."""
    data = text.encode()
    match draw(st.sampled_from(["keep", "keep", "cut", "deep", "huge", "utf8", "insert"])):
        case "cut":
            data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
        case "deep":
            data = b"[" * draw(st.sampled_from([900, 5_000, 200_000])) + data
        case "huge":
            data = data.replace(b"8", b"9" * 5000, 1)
        case "utf8":
            at = draw(st.integers(0, len(data)))
            data = data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"])) + data[at:]
        case "insert":
            at = draw(st.integers(0, len(data)))
            data = data[:at] + draw(st.sampled_from([b"NaN", b"Infinity", b"1e999", b"-0", b",", b"}", b"\x00"])) + \
                data[at:]
    return data


@st.composite
def arch_files(draw: st.DrawFn) -> tuple[str, bytes]:
    obj = draw(mutated(NETS))
    if draw(st.booleans()):
        return ".jsonl", draw(damaged(json.dumps(obj, allow_nan=True)))
    doc = [obj] if draw(st.integers(0, 4)) == 0 else obj
    return ".json", draw(damaged(json.dumps(doc, allow_nan=True)))


@FUZZ
@given(arch_files())
def test_fuzzed_arch_file(case: tuple[str, bytes]) -> None:
    suffix, body = case
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"net{suffix}"
        path.write_bytes(body)
        res = runner.invoke(app, ["roofline", "--arch", str(path), "--devices", "t4"])
        _one_line_or_ok(res, path)
        if res.exit_code == 0:
            assert "t4" in res.stdout
        else:
            assert str(path) in res.stderr, res.stderr  # the error names the file


KEYS = ["reward", "guard", "kind", "w_acc", "accuracy", "size", "time", "weight", "knees", "slopes", "alpha", "beta",
        "threshold_bytes", "threshold_s", "source", "device", "lambda_std", "mask_out_of_range", "colour"]
scalars = st.one_of(
    st.booleans(), st.integers(-5, 10**20), st.floats(allow_nan=True, allow_infinity=True), st.just(HUGE),
    st.sampled_from(["median", "linear", "mnas_soft", "mnas_hard", "roofline", "predictor", "123", "", "t4"]),
)
values = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(KEYS), c,
                                                                                     max_size=2), max_leaves=6)
VALID = {"reward": {"kind": "linear", "w_acc": 1.0, "accuracy": "val_acc",
                    "size": {"threshold_bytes": 1e6, "weight": 0.5, "knees": [1.0, 2.0], "slopes": [1.0, 3.0]},
                    "time": {"threshold_s": "median", "source": "roofline", "device": "t4"}},
         "guard": {"lambda_std": 0.5, "mask_out_of_range": True}}


def _tables(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [d] + [t for v in d.values() if isinstance(v, dict) for t in _tables(v)]


@st.composite
def reward_docs(draw: st.DrawFn) -> dict[str, Any]:
    doc = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(0, 3))):
        table = draw(st.sampled_from(_tables(doc)))
        if table and draw(st.booleans()):
            del table[draw(st.sampled_from(sorted(table)))]
        else:
            table[draw(st.sampled_from(KEYS))] = draw(values)
    return doc


def _toml_value(v: Any) -> str:
    if v == HUGE:
        return "9" * 5000
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"


def to_toml(doc: dict[str, Any], name: str = "") -> str:
    """TOML for a document: scalars and arrays as key = value, tables as [headers]."""
    lines = [f"[{name}]"] if name else []
    lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for k, v in doc.items():
        if isinstance(v, dict):
            lines.append(to_toml(v, f"{name}.{json.dumps(k)}" if name else json.dumps(k)))
    return "\n".join(lines) + "\n"


def _finite(cfg: RewardConfig) -> bool:
    nums = [cfg.w_acc, cfg.lambda_std]
    for p in (cfg.size, cfg.time):
        nums += [p.weight, *p.knees, *p.slopes] + [x for x in (p.threshold, p.alpha, p.beta) if x is not None]
    return all(isinstance(x, float) and math.isfinite(x) for x in nums)


@FUZZ
@given(reward_docs().flatmap(lambda doc: damaged(to_toml(doc))))
def test_fuzzed_reward_file(body: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "reward.toml"
        path.write_bytes(body)
        try:
            cfg = load_reward(path)
        except RewardConfigError as e:
            msg = str(e)
            assert msg.startswith(f"{path}: ") and "\n" not in msg, msg
        else:
            assert _finite(cfg), cfg
            assert cfg.size.knees == tuple(sorted(cfg.size.knees)) and len(cfg.size.knees) == len(cfg.size.slopes)
        # through the command: the reward is read before the (missing) predictor, so one line either way
        res = runner.invoke(app, ["search", "--predictor", f"{d}/none", "--out", f"{d}/s", "--reward", str(path)])
        _one_line_or_ok(res, path)
        assert res.exit_code == 2
        assert not Path(d, "s").exists()
