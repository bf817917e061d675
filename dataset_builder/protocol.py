"""The one fixed training protocol of a corpus, recorded in its manifest and hashed into every row."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Protocol:
    """Optimizer, schedule, epochs and batch size: what makes two rows' numbers comparable."""

    epochs: int = 5
    batch_size: int = 128
    optimizer: str = "adamw"
    lr: float = 0.01
    weight_decay: float = 0.0005
    schedule: str = "onecycle"  # linear warm-up over 10 % of the steps, cosine decay to 0
    warmup_frac: float = 0.1
    eval_batch_size: int = 1024
    data_seed: int = 0  # fixes the train/val/test split for every row
    timing_warmup_steps: int = 5
    latency_batch_n: int = 128

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size", "latency_batch_n"):
            if getattr(self, name) < 1:
                raise ValueError(f"protocol {name} must be >= 1, got {getattr(self, name)}")
        if self.optimizer != "adamw":
            raise ValueError(f"protocol optimizer {self.optimizer!r} is not supported (adamw)")
        if self.schedule != "onecycle":
            raise ValueError(f"protocol schedule {self.schedule!r} is not supported (onecycle)")
        if not self.lr > 0:
            raise ValueError(f"protocol lr must be > 0, got {self.lr}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def protocol_hash(self) -> str:
        """sha256 of the canonical JSON of the protocol (first 16 hex digits)."""
        return protocol_digest(self.to_dict())

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Protocol:
        return Protocol(**d)


def protocol_digest(protocol: dict[str, Any]) -> str:
    """sha256 of a protocol's canonical JSON (sorted keys, no spaces), 16 hex digits: a manifest's protocol_hash."""
    text = json.dumps(protocol, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
