"""Deterministic shards of a build plan, for job arrays: shards 0..n-1 of one plan together are the whole plan."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from narch.search_space import PlannedNet


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based, like SLURM_ARRAY_TASK_ID)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: need 0 <= i < n (0-based index of n shards)")

    @staticmethod
    def parse(text: str) -> Shard:
        """'i/n' -> Shard(i, n)."""
        parts = text.split("/")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"--shard {text!r}: expected i/n, e.g. 0/4 (0-based index of n shards)")
        return Shard(int(parts[0]), int(parts[1]))

    def holds(self, arch_id: str) -> bool:
        """Whether the network belongs to this shard: sha256 of its arch_id, mod n (same answer on every host)."""
        return int(hashlib.sha256(arch_id.encode()).hexdigest()[:16], 16) % self.count == self.index

    def select(self, plan: list[PlannedNet]) -> list[PlannedNet]:
        """This shard's part of a plan, in plan order."""
        return [item for item in plan if self.holds(item.net.arch_id)]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
