"""The data card states its own corpora's facts: the reference corpora's caveats only on the reference card, a task's
only where a corpus of it is on the card, and a loading section whose code runs on the corpus it names."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from narch.cli import app
from narch.dataset_builder.corpus import MANIFEST
from narch.dataset_builder.datacard import GENERAL_CAVEATS, REFERENCE_CAVEATS, TASK_CAVEATS, write_datacard


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def user_card(tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("card") / "DATACARD.md"
    write_datacard([tiny_corpus], out, command="test")
    return out.read_text()


def test_a_users_card_has_the_general_and_task_caveats_only(user_card: str, tiny_corpus: Path) -> None:
    flat = _flat(user_card)
    assert all(_flat(c) in flat for c in (*GENERAL_CAVEATS, TASK_CAVEATS["mnist1d"]))
    assert not any(_flat(c) in flat for c in REFERENCE_CAVEATS)
    assert "reference corpora" not in flat and "2-core" not in flat
    assert user_card.startswith(f"# Data card: `{tiny_corpus}`")


def test_the_reference_card_adds_the_reference_caveats(tiny_corpus: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["corpus", "datacard", str(tiny_corpus), "--out", str(tmp_path / "card.md"),
                                   "--reference"])
    assert res.exit_code == 0, res.output
    flat = _flat((tmp_path / "card.md").read_text())
    assert flat.startswith("# Data card: Neural Architect reference corpora")
    assert all(_flat(c) in flat for c in (*GENERAL_CAVEATS, *REFERENCE_CAVEATS))


def test_caveat_lines_fit_the_page(user_card: str) -> None:
    caveats = user_card.split("## Known caveats")[1].split("## Loading")[0]
    assert max(len(line) for line in caveats.splitlines()) <= 120


def test_the_loading_code_runs_on_the_corpus_it_names(user_card: str, tiny_corpus: Path) -> None:
    (code,) = re.findall(r"```python\n(.*?)```", user_card, flags=re.S)
    assert str(tiny_corpus) in code and 'pl.col("created_at").str.to_datetime(time_zone="UTC")' in code
    ran, scope = 0, {}  # one scope, as when the block is pasted whole
    for snippet in code.split("\n\n"):
        module = re.match(r"(?:import|from) (\w+)", snippet.strip())
        if module and importlib.util.find_spec(module.group(1)) is None:
            continue  # pandas or duckdb where they are not installed
        exec(snippet, scope)
        ran += 1
    assert ran >= 3  # polars, pyarrow and the project's reader at least
    assert "`_manifest.json`" in user_card and "narch corpus migrate" not in user_card


def test_a_legacy_corpus_card_says_how_to_migrate(tiny_corpus: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "old"
    shutil.copytree(tiny_corpus, corpus)
    (corpus / MANIFEST).rename(corpus / "manifest.json")
    write_datacard([corpus], tmp_path / "card.md", command="test")
    flat = _flat((tmp_path / "card.md").read_text())
    assert "keeps its manifest as `manifest.json`" in flat and f"`narch corpus migrate {corpus}`" in flat
    assert "(`manifest.json`, hash" in flat
