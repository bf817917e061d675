"""The query API (narch.query): lookups on a real two-seed corpus, predictions from the committed frozen predictor,
`narch predict --archs-from` and the README's Querying examples, executed."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from narch.cli import app
from narch.dataset_builder.corpus import CorpusError
from narch.dataset_builder.schema import TIME_LABEL, UNITS
from narch.predictors.artefacts import Artefact, load_artefact
from narch.query import NotInCorpus, open_corpus, predict, prediction_frame
from narch.search_space import SEEDS, SpecError, write_jsonl
from tests.conftest import build_tiny, readme_blocks

ROOT = Path(__file__).resolve().parents[1]
FROZEN = ROOT / "results" / "leaderboards" / "mnist1d_ref" / "val_acc" / "frozen"
REF = ROOT / "results" / "corpus" / "mnist1d_ref"
runner = CliRunner()


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two seed networks, each trained with training seeds 0 and 1 (one epoch, 128 examples)."""
    d = tmp_path_factory.mktemp("query")
    nets = d / "nets.jsonl"
    write_jsonl([SEEDS["tiny"], SEEDS["lenet"]], nets)
    for seed in (0, 1):
        build_tiny(d / "c", n_train=128, archs_from=nets, seed=seed)
    return d / "c"


def test_every_input_kind_looks_up_the_same_record(two_seeds: Path) -> None:
    corpus = open_corpus(two_seeds)
    net = SEEDS["lenet"]
    spaced = json.dumps(json.loads(net.to_json()), indent=2)  # not canonical: same network
    recs = [corpus.lookup(a) for a in (net.arch_id, net, net.to_json(), spaced, json.loads(net.to_json()))]
    for r in recs:
        assert (r.arch_id, r.network, r.settings) == (recs[0].arch_id, net, recs[0].settings)
        assert r.rows.height == 2
    assert len(corpus) == 2 and set(corpus) == {net.arch_id, SEEDS["tiny"].arch_id}
    assert net in corpus and net.arch_id in corpus and SEEDS["vgg_tiny"] not in corpus and 5 not in corpus
    assert {n.arch_id for n in corpus.networks()} == set(corpus.arch_ids())
    assert corpus.frame.height == 4


def test_metrics_are_mean_std_and_count_over_seeds(two_seeds: Path) -> None:
    corpus = open_corpus(two_seeds)
    rec = corpus.lookup(SEEDS["tiny"])
    s = rec.setting()
    assert (s.task, s.n_train, s.epochs, s.device_kind) == ("mnist1d", 128, 1, "cpu")
    assert s.seeds == (0, 1) and s.statuses == {"ok": 2}
    assert s.time_label == TIME_LABEL["cpu"][0] and s.time is s.metrics[s.time_label]
    rows = rec.rows.sort("seed")
    for col in ("val_acc", "train_loss", "train_time_s", s.time_label, "params"):
        values = [float(v) for v in rows[col]]
        m = s[col]
        assert (m.name, m.unit, m.count) == (col, UNITS[col], 2)
        assert m.mean == pytest.approx(sum(values) / 2, rel=1e-12)
        assert m.std == pytest.approx(statistics.stdev(values), rel=1e-9, abs=1e-15)  # sample std, ddof 1
    assert s["params"].std == 0.0 and s["val_acc"].unit == "fraction"
    assert "seed" not in s.metrics and "n_train" not in s.metrics and "lr" not in s.metrics
    doc = json.loads(json.dumps(rec.to_dict(), allow_nan=False))
    assert doc["settings"][0]["metrics"]["val_acc"]["count"] == 2 and doc["arch_id"] == rec.arch_id
    with pytest.raises(KeyError, match="no metric 'nope'"):
        s["nope"]


def test_an_unknown_network_names_its_arch_id_and_the_corpus(two_seeds: Path) -> None:
    corpus = open_corpus(two_seeds)
    net = SEEDS["vgg_tiny"]
    with pytest.raises(NotInCorpus) as e:
        corpus.lookup(net)
    assert isinstance(e.value, KeyError)
    assert str(e.value) == f"{net.arch_id}: no such network in the corpus {two_seeds} (2 networks)"
    with pytest.raises(SpecError, match="'lenet' is neither an arch_id"):
        corpus.lookup("lenet")
    with pytest.raises(SpecError, match="arch: 5 is not a benchmark index of "):
        corpus.lookup(5)  # a built corpus has no benchmark index
    with pytest.raises(SpecError):
        corpus.lookup('{"layers": 5}')


def test_what_is_not_a_corpus_is_one_line_naming_the_path(tmp_path: Path, two_seeds: Path) -> None:
    (tmp_path / "afile").write_text("x")
    (tmp_path / "many").mkdir()
    (tmp_path / "many" / "one").symlink_to(two_seeds)
    for path, msg in ((tmp_path / "nope", "no such corpus folder"), (tmp_path / "afile", "is a file"),
                      (tmp_path, "no manifest"), (tmp_path / "many", "a folder of 1 corpora (one)")):
        with pytest.raises(CorpusError) as e:
            open_corpus(path)
        assert str(path) in str(e.value) and msg in str(e.value) and "\n" not in str(e.value)


def test_imported_corpora_answer_by_arch_id() -> None:
    corpus = open_corpus(ROOT / "results" / "corpus" / "nb101")
    rec = corpus.lookup(next(iter(corpus)))
    assert [s.epochs for s in rec.settings] == [4, 12, 36, 108]
    assert all(s.device_kind == "tpu" and s.time_label == "train_time_s" for s in rec.settings)
    assert rec.setting(epochs=108)["val_acc"].count >= 1


def _ref_nets(k: int) -> list[Any]:
    return [*open_corpus(REF).networks()[:k], SEEDS["lenet"]]


def test_predict_many_matches_the_artefact_and_the_scorer() -> None:
    from narch.controller.objectives import TaskContext
    from narch.controller.scorers import FrozenScorer

    nets = _ref_nets(20)
    frame = predict(FROZEN, [nets[0].to_json(), json.loads(nets[1].to_json()), *nets[2:]])
    assert frame.columns == ["arch_id", "val_acc"] and frame["arch_id"].to_list() == [n.arch_id for n in nets]
    art = load_artefact(FROZEN)
    d = art.manifest["descriptors"]
    np.testing.assert_allclose(frame["val_acc"].to_numpy(), art.predict_networks(nets, d)["val_acc"])
    ctx = TaskContext(tuple(d["input_shape"]), d["n_classes"], d["n_train"], d["epochs"], d["batch_size"], d)
    np.testing.assert_allclose(frame["val_acc"].to_numpy(), FrozenScorer(FROZEN, ctx).predict(nets)["val_acc"])
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        predict(FROZEN, nets, epochs=0)


class _Spread:
    """A family with an uncertainty (the deep ensemble's interface)."""

    def predict_networks_with_std(self, nets: list[Any], descriptors: dict[str, Any]) -> tuple[Any, Any]:
        return np.arange(len(nets), dtype=float), np.full(len(nets), 0.5)


def test_a_family_with_an_uncertainty_adds_a_std_column() -> None:
    art = Artefact(Path("stub"), {"entries": {}}, {"val_acc": _Spread()}, "0" * 64)  # type: ignore[dict-item]
    frame = prediction_frame(art, [SEEDS["tiny"], SEEDS["lenet"]], {})
    assert frame.columns == ["arch_id", "val_acc", "val_acc_std"]
    assert frame["val_acc"].to_list() == [0.0, 1.0] and frame["val_acc_std"].to_list() == [0.5, 0.5]


def _strict(text: str) -> Any:
    def refuse(name: str) -> None:
        raise ValueError(f"non-strict JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_predict_archs_from_prints_a_table_and_json(tmp_path: Path) -> None:
    nets = _ref_nets(3)
    f = tmp_path / "nets.jsonl"
    write_jsonl(nets, f)
    expect = predict(FROZEN, nets)
    r = runner.invoke(app, ["predict", "--predictor", str(FROZEN), "--archs-from", str(f)])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"4 networks from {f} (val_acc: gbdt) under ")
    assert lines[1] == "| arch_id | val_acc |" and len(lines) == 3 + len(nets)
    for line, (arch_id, v) in zip(lines[3:], expect.iter_rows(), strict=True):
        assert line == f"| {arch_id} | {v:.6g} |"
    r = runner.invoke(app, ["predict", "--predictor", str(FROZEN), "--archs-from", str(f), "--json"])
    assert r.exit_code == 0, r.output
    doc = _strict(r.stdout)
    assert doc["families"] == {"val_acc": "gbdt"} and doc["sha256"] == load_artefact(FROZEN).digest
    assert doc["descriptors"]["task"] == "mnist1d"
    assert pl.DataFrame(doc["predictions"]).equals(expect)
    r = runner.invoke(app, ["predict", "--predictor", str(FROZEN), "--arch", "lenet", "--json"])
    assert r.exit_code == 0 and _strict(r.stdout)["predictions"] == expect.tail(1).to_dicts()
    r = runner.invoke(app, ["predict", "--predictor", str(FROZEN), "--arch", "lenet"])
    assert r.exit_code == 0 and f"val_acc: {expect['val_acc'][-1]:.6g}  (gbdt)" in r.stdout


def test_a_line_that_is_not_a_network_names_the_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "nets.jsonl"
    f.write_text(SEEDS["tiny"].to_json() + "\n\n" + '{"layers": [{"op": "conv", "channels": -3}]}\n')
    r = runner.invoke(app, ["predict", "--predictor", str(FROZEN), "--archs-from", str(f)])
    assert r.exit_code == 2 and r.stdout == ""
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1 and line.startswith(f"narch: error: {f}:3: "), line


def test_the_readme_querying_examples_run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    blocks = readme_blocks("### Querying")
    assert blocks, "the README's Querying subsection has a python block"
    monkeypatch.chdir(ROOT)
    for i, code in enumerate(blocks):
        exec(compile(code, f"README.md (Querying, block {i + 1})", "exec"), {"__name__": "__readme__"})
    out = capsys.readouterr().out
    assert "val_acc" in out and "no such network in the corpus results/corpus/mnist1d_ref" in out
    assert "NB-201 200 epochs: test_acc 0.9436, 1,288,506 params" in out  # NAS-Bench-201's index 9930
    assert "NB-201 12 epochs: val_acc 0.8475" in out


def test_imported_corpora_answer_by_the_benchmark_index_and_name() -> None:
    nb201 = open_corpus(ROOT / "results/corpus/nb201_cifar10")
    csv = pl.read_csv(ROOT / "narch/data/external/nb201/nb201_test_accuracy_200ep.csv")
    for i in (0, 9930, 15624):
        by_index, by_name = nb201.lookup(i), nb201.lookup(csv["arch_str"][i])
        assert by_index.arch_id == by_name.arch_id and by_index.rows.equals(by_name.rows)
        assert set(by_index.rows["bench_index"]) == {i}  # an isomorphic cell's rows are not mixed in
        assert by_index.setting(epochs=200)["test_acc"].mean == pytest.approx(csv["cifar10_test_acc"][i] / 100)
    nb101 = open_corpus(ROOT / "results/corpus/nb101")
    h = nb101.frame["bench_arch"][0]
    assert nb101.lookup(h).arch_id == nb101.frame["arch_id"][0] and len(nb101.lookup(h).settings) == 4
    with pytest.raises(SpecError, match="not a benchmark index"):
        nb201.lookup(99_999)
    with pytest.raises(SpecError, match="neither an arch_id"):
        nb201.lookup("|bogus~0|")
