"""arch_id is the same in another process, whatever its hash seed (no hash(), id() or random() in the identity)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from narch.search_space import SEEDS, plan_networks

SCRIPT = """
import json
from narch.search_space import SEEDS, plan_networks
out = {name: net.arch_id for name, net in SEEDS.items()}
out.update({f"plan{i}": p.net.arch_id for i, p in enumerate(plan_networks(12, 3))})
out.update({f"parent{i}": p.parent_arch_id for i, p in enumerate(plan_networks(12, 3))})
out.update({f"move{i}": p.move for i, p in enumerate(plan_networks(12, 3))})
print(json.dumps(out))
"""


def _in_process() -> dict[str, str | None]:
    out: dict[str, str | None] = {name: net.arch_id for name, net in SEEDS.items()}
    plan = plan_networks(12, 3)
    out.update({f"plan{i}": p.net.arch_id for i, p in enumerate(plan)})
    out.update({f"parent{i}": p.parent_arch_id for i, p in enumerate(plan)})
    out.update({f"move{i}": p.move for i, p in enumerate(plan)})
    return out


@pytest.mark.parametrize("hash_seed", ["0", "12345"])
def test_arch_ids_match_across_processes(hash_seed: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True, cwd=str(tmp_path)
    )
    theirs = json.loads(result.stdout)
    ours = _in_process()
    assert theirs == ours
    assert any(v is not None for k, v in ours.items() if k.startswith("parent")), "plan should hold some edits"
