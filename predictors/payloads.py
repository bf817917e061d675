"""Reading one payload file of a predictor artefact without running its code: the checks and readers families use.

A payload must be a regular file (no link, no device or pipe) and must not need pickle to load:

- a file whose bytes parse, from the first byte, as a complete pickle opcode stream is refused, whatever its
  protocol (0 and 1 are text-like and carry no header; ``pickletools.genops`` parses opcodes without executing
  any); the formats that have their own magic are checked by their own rule instead:
- ``.npy`` (magic ``\\x93NUMPY``): version 1.0 or 2.0, no Python objects in the dtype, and the header's shape x
  itemsize must equal the bytes the file holds after the header, checked before anything is allocated (a header
  claiming 745 GiB in a small file is refused in one line, not a MemoryError);
- torch zip files (magic ``PK``) hold a pickle by design: they are read only through ``load_torch_state`` with
  ``torch.load(weights_only=True)``, and whatever it refuses becomes one ``ArtefactError``.

Every error is an ``ArtefactError`` of one line naming the file.
"""

from __future__ import annotations

import io
import json
import math
import os
import pickletools
import re
import stat
from pathlib import Path
from typing import Any

import numpy as np

from narch.core.errors import NarchError

PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".joblib", ".dill", ".pck"})
NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
PICKLE_SCAN_BYTES = 1 << 20  # opcodes parsed from the start; a stream still valid here is treated as a pickle


class ArtefactError(NarchError, ValueError):
    """An artefact that cannot be trusted or read; the message names the file."""


def one_line(e: BaseException) -> str:
    """An exception's first line (torch and lightgbm messages run over several)."""
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def regular_file(path: Path, *, missing: str = "payload is missing") -> os.stat_result:
    """``lstat`` of an artefact file that must be a regular file (not a link, folder, pipe or device)."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        raise ArtefactError(f"{path}: {missing}") from None
    except OSError as e:
        raise ArtefactError(f"{path}: cannot be read ({one_line(e)})") from None
    if stat.S_ISLNK(st.st_mode):
        raise ArtefactError(f"{path}: is a symbolic link; artefact payloads must be regular files in the folder")
    if not stat.S_ISREG(st.st_mode):
        raise ArtefactError(f"{path}: is not a regular file")
    return st


class _Discard:
    """A text sink for ``pickletools.dis``."""

    def write(self, text: str) -> int:
        return len(text)


def is_pickle(head: bytes, *, whole: bool) -> bool:
    """Whether ``head`` (a file's first bytes; ``whole``: all of it) is the start of a pickle ``pickle.load`` would
    read: a protocol 2+ header, or opcodes that parse with consistent stack effects up to STOP (or to the end of a
    truncated ``head``)."""
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return True
    buf = io.BytesIO(head)
    try:
        pickletools.dis(buf, out=_Discard())  # parses and checks stack effects; executes nothing
    except ValueError:
        # not a valid stream (bad opcode, stack underflow), or the data ran out: only a truncated head that ran
        # out might still be a pickle
        return not whole and buf.tell() >= len(head)
    return True


def check_npy(path: Path, size_bytes: int) -> None:
    """Refuse an ``.npy`` whose header is malformed, holds objects, or declares other than the bytes it holds."""
    with path.open("rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"version {version[0]}.{version[1]} is not supported (1.0 and 2.0 are)")
        except (ValueError, SyntaxError, TypeError, OverflowError) as e:
            raise ArtefactError(f"{path}: not a valid .npy file ({one_line(e)})") from None
        offset = f.tell()
    if dtype.hasobject:
        raise ArtefactError(f"{path}: an .npy of Python objects needs pickle; refused")
    declared = math.prod(int(n) for n in shape) * dtype.itemsize
    held = size_bytes - offset
    if declared != held:
        raise ArtefactError(f"{path}: .npy header declares shape {tuple(shape)} of {dtype} ({declared:,} bytes) but "
                            f"the file holds {held:,} bytes after its header; refused before allocating")


def check_payload(path: Path) -> None:
    """Every content rule of the module docstring for one payload (the file must exist)."""
    st = regular_file(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise ArtefactError(f"{path}: pickle payloads are refused (suffix {path.suffix})")
    with path.open("rb") as f:
        head = f.read(PICKLE_SCAN_BYTES)
    if head.startswith(NPY_MAGIC):
        check_npy(path, st.st_size)
    elif head.startswith(ZIP_MAGIC):
        return  # torch's zip format: its pickle is read only by load_torch_state (weights_only)
    elif is_pickle(head, whole=st.st_size <= len(head)):
        how = f"a pickle protocol {head[1]} header" if head[:1] == b"\x80" else "bytes that parse as pickle opcodes"
        raise ArtefactError(f"{path}: pickle payloads are refused (it starts with {how})")
    elif path.suffix == ".npy":
        check_npy(path, st.st_size)  # not an .npy at all: refused naming the problem


def read_npy(path: Path) -> np.ndarray:
    """A numeric array from an ``.npy`` payload (header checked first; ``allow_pickle=False``)."""
    check_npy(path, regular_file(path).st_size)
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ArtefactError(f"{path}: cannot be read as .npy ({one_line(e)})") from None


def read_text(path: Path) -> str:
    """A UTF-8 text payload (a library's own text format, such as LightGBM's)."""
    regular_file(path)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ArtefactError(f"{path}: cannot be read as UTF-8 text ({one_line(e)})") from None


def read_json(path: Path) -> Any:
    """A JSON payload."""
    text = read_text(path)
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise ArtefactError(f"{path}: malformed JSON ({one_line(e)})") from None


def _torch_reason(e: BaseException) -> str:
    """The line of a torch.load error that says what was refused (its first lines are advice)."""
    for line in str(e).splitlines():
        if "WeightsUnpickler error:" in line:
            reason = line.split("WeightsUnpickler error:", 1)[1].strip()
            return reason.split(". Please use")[0]
    return re.sub(r"\x1b\[[0-9;]*m", "", one_line(e))


def load_torch_state(path: Path) -> dict[str, Any]:
    """A torch state dict through ``torch.load(weights_only=True)`` on the CPU; a file holding anything but
    tensors and plain containers (a ``__reduce__`` object, say) is refused in one line."""
    import pickle

    import torch

    regular_file(path)
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except (pickle.UnpicklingError, RuntimeError, OSError, ValueError, EOFError, AttributeError) as e:
        raise ArtefactError(f"{path}: refused by torch's weights-only loader ({_torch_reason(e)})") from None
    if not isinstance(state, dict):
        raise ArtefactError(f"{path}: holds a {type(state).__name__}, not a state dict")
    return state
