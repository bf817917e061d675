"""JSON round trips of networks and loading networks from .json / .jsonl files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from narch.search_space import (
    SEEDS,
    Network,
    SpecError,
    load_networks,
    plan_networks,
    resolve_network,
    seed_network,
    write_jsonl,
)

PLANNED = [p.net for p in plan_networks(100, 11)]


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_seed_round_trip(name: str) -> None:
    net = SEEDS[name]
    back = Network.from_json(net.to_json())
    assert back == net
    assert back.arch_id == net.arch_id
    assert back.to_json() == net.to_json()


def test_planned_networks_round_trip() -> None:
    assert len(PLANNED) == 100
    for net in PLANNED:
        back = Network.from_json(net.to_json())
        assert back == net, net.to_json()
        assert back.arch_id == net.arch_id
        assert Network.from_dict(net.to_dict()) == net


def test_canonical_json_has_no_spaces_and_sorted_keys() -> None:
    text = SEEDS["vgg_tiny"].to_json()
    assert " " not in text and "\n" not in text
    d = json.loads(text)
    assert list(d) == sorted(d)
    assert all(list(layer) == sorted(layer) for layer in d["layers"])
    assert d["schema"] == 1


def test_load_json_one_object(tmp_path: Path) -> None:
    p = tmp_path / "one.json"
    p.write_text(json.dumps(SEEDS["lenet"].to_dict(), indent=2))
    assert load_networks(p) == [SEEDS["lenet"]]


def test_load_json_list(tmp_path: Path) -> None:
    nets = [SEEDS["lenet"], SEEDS["tiny"], *PLANNED[:5]]
    p = tmp_path / "many.json"
    p.write_text(json.dumps([n.to_dict() for n in nets]))
    assert load_networks(p) == nets


def test_write_and_load_jsonl(tmp_path: Path) -> None:
    p = tmp_path / "nets.jsonl"
    write_jsonl(PLANNED, p)
    assert p.read_text().count("\n") == len(PLANNED)
    assert load_networks(str(p)) == PLANNED


def test_jsonl_skips_blank_lines(tmp_path: Path) -> None:
    p = tmp_path / "nets.jsonl"
    p.write_text(SEEDS["tiny"].to_json() + "\n\n   \n" + SEEDS["lenet"].to_json() + "\n")
    assert load_networks(p) == [SEEDS["tiny"], SEEDS["lenet"]]


def test_jsonl_error_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    bad = '{"layers":[{"op":"conv","channels":0,"kernel":3}]}'
    p.write_text(SEEDS["tiny"].to_json() + "\n" + SEEDS["lenet"].to_json() + "\n" + bad + "\n")
    with pytest.raises(SpecError, match=r"bad\.jsonl:3: layer 0: conv channels"):
        load_networks(p)


def test_jsonl_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text(SEEDS["tiny"].to_json() + "\n{not json\n")
    with pytest.raises(SpecError, match=r"bad\.jsonl:2: arch: malformed JSON at line 1 column 2"):
        load_networks(p)


def test_jsonl_empty_file_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "empty.jsonl"
    p.write_text("\n")
    with pytest.raises(SpecError, match="holds no network"):
        load_networks(p)


def test_json_malformed_names_file(tmp_path: Path) -> None:
    p = tmp_path / "bad.json"
    p.write_text('{"layers": [')
    with pytest.raises(SpecError, match=r"bad\.json: malformed JSON at line 1"):
        load_networks(p)


def test_json_invalid_network_names_file(tmp_path: Path) -> None:
    p = tmp_path / "bad.json"
    p.write_text('[{"layers":[{"op":"conv","channels":8,"kernel":3}]}, {"layers":[{"op":"warp"}]}]')
    with pytest.raises(SpecError, match=r"bad\.json\[1\]: layer 0: unknown op 'warp'"):
        load_networks(p)
    p.write_text('{"layers":[{"op":"conv","channels":8,"kernel":4}]}')
    with pytest.raises(SpecError, match=r"bad\.json: layer 0: conv kernel must be one of"):
        load_networks(p)


def test_json_empty_list_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "empty.json"
    p.write_text("[]")
    with pytest.raises(SpecError, match=r"empty\.json: holds no network"):
        load_networks(p)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such file"):
        load_networks(tmp_path / "nope.jsonl")


def test_resolve_network_by_seed_name_and_file(tmp_path: Path) -> None:
    assert resolve_network("resnet_tiny") == SEEDS["resnet_tiny"]
    p = tmp_path / "one.json"
    p.write_text(SEEDS["allconv"].to_json())
    assert resolve_network(str(p)) == SEEDS["allconv"]


def test_resolve_network_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="neither a seed network"):
        resolve_network("no_such_seed")
    p = tmp_path / "two.jsonl"
    write_jsonl([SEEDS["tiny"], SEEDS["lenet"]], p)
    with pytest.raises(SpecError, match="holds 2 networks, expected one"):
        resolve_network(str(p))


def test_seed_network_by_name() -> None:
    assert seed_network("lenet") is SEEDS["lenet"]
    with pytest.raises(SpecError, match=r"seed network 'lenet5' is unknown \(known: allconv, lenet, mnist1d_cnn"):
        seed_network("lenet5")
