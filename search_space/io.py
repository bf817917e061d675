"""Networks from JSON / JSONL files and seed names."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from narch.core.files import atomic_write_text, parse_json
from narch.search_space.layer import SpecError
from narch.search_space.seeds import SEEDS, seed_network
from narch.search_space.spec import Network


def load_networks(path: str | Path) -> list[Network]:
    """Networks from a .jsonl file (one per line) or a .json file (one network or a list).

    Errors name the file and the line (``nets.jsonl:3: ...``) or the list item (``nets.json[2]: ...``).
    """
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"{p}: no such file")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(f"{p}: not UTF-8 text (byte {e.start}: {e.reason})") from None
    if p.suffix == ".jsonl":
        nets = []
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    nets.append(Network.from_json(line))
                except SpecError as e:
                    raise SpecError(f"{p}:{n}: {e}") from None
        if not nets:
            raise SpecError(f"{p}: holds no network")
        return nets
    data = parse_json(text, error=SpecError, what=str(p))
    if not isinstance(data, list):
        try:
            return [Network.from_dict(data)]
        except SpecError as e:
            raise SpecError(f"{p}: {e}") from None
    if not data:
        raise SpecError(f"{p}: holds no network")
    nets = []
    for k, d in enumerate(data):
        try:
            nets.append(Network.from_dict(d))
        except SpecError as e:
            raise SpecError(f"{p}[{k}]: {e}") from None
    return nets


def resolve_network(ref: str) -> Network:
    """A seed name or a path to a JSON file holding exactly one network."""
    if ref in SEEDS:
        return seed_network(ref)
    if not Path(ref).exists():
        raise SpecError(f"{ref!r} is neither a seed network ({', '.join(sorted(SEEDS))}) nor a file")
    nets = load_networks(ref)
    if len(nets) != 1:
        raise SpecError(f"{ref}: holds {len(nets)} networks, expected one")
    return nets[0]


def write_jsonl(nets: list[Network], path: str | Path) -> None:
    """One canonical JSON network per line."""
    atomic_write_text(path, "".join(n.to_json() + "\n" for n in nets))


def deepest(arch_jsons: Iterable[str]) -> int:
    """Layers of the deepest network among canonical JSON texts (0 for none); each distinct text is parsed once."""
    return max((len(Network.from_json(j)) for j in set(arch_jsons)), default=0)
