"""narch.core.tables: the one markdown renderer behind every report's tables, pinned byte for byte."""

from __future__ import annotations

import polars as pl

from narch.core.tables import markdown_table


def test_floats_to_significant_digits_and_other_cells_as_str() -> None:
    df = pl.DataFrame({"strategy": ["a2c", "random"], "mean": [0.123456, 12.0], "seeds": [3, 3]})
    assert markdown_table(df) == ("| strategy | mean | seeds |\n|---|---|---|\n"
                                  "| a2c | 0.1235 | 3 |\n| random | 12 | 3 |")
    assert markdown_table(df, floats=2).splitlines()[2] == "| a2c | 0.12 | 3 |"


def test_floats_none_shows_cells_as_str_and_an_empty_table_keeps_its_header() -> None:
    df = pl.DataFrame({"predictor": ["gbdt"], "τ": ["0.512 ± 0.010"], "x": [0.123456]})
    assert markdown_table(df, floats=None).splitlines()[2] == "| gbdt | 0.512 ± 0.010 | 0.123456 |"
    empty = pl.DataFrame(schema={"a": pl.String, "b": pl.Float64})
    assert markdown_table(empty) == "| a | b |\n|---|---|"


class _Rows:
    """Not a frame: anything with ``columns`` and ``iter_rows()`` renders."""

    columns = ("k", "v")

    def iter_rows(self) -> list[tuple[str, float]]:
        return [("x", 1.0 / 3)]


def test_any_table_with_columns_and_iter_rows() -> None:
    assert markdown_table(_Rows(), floats=3) == "| k | v |\n|---|---|\n| x | 0.333 |"
