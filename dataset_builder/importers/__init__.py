"""Importers of public corpora (NAS-Bench-201, HELP latencies, NAS-Bench-101, EC-NAS), and of any user's table of
architectures and metrics (``table.py``), into the corpus schema."""

from narch.dataset_builder.importers.cells import (
    CELL_MAPPING_VERSION,
    CellFormatError,
    CellMapping,
    UnmappableCell,
    nb101_network,
    nb201_network,
)
from narch.dataset_builder.importers.kinds import KINDS, prepare_import, run_import
from narch.dataset_builder.importers.sources import EXTERNAL_ENV, SourceError, external_dir
from narch.dataset_builder.importers.writer import PreparedImport, write_import

__all__ = [
    "CELL_MAPPING_VERSION",
    "EXTERNAL_ENV",
    "KINDS",
    "CellFormatError",
    "CellMapping",
    "PreparedImport",
    "SourceError",
    "UnmappableCell",
    "external_dir",
    "nb101_network",
    "nb201_network",
    "prepare_import",
    "run_import",
    "write_import",
]
