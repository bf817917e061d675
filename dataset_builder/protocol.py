"""The one fixed training protocol of a corpus, recorded in its manifest and hashed into every row."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from narch.core.checks import check_float, check_int
from narch.core.errors import SettingError


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
            check_int(f"protocol {name}", getattr(self, name), low=1)
        check_int("protocol data_seed", self.data_seed, low=0)
        check_int("protocol timing_warmup_steps", self.timing_warmup_steps, low=0)
        if self.optimizer != "adamw":
            raise SettingError(f"protocol optimizer {self.optimizer!r} is not supported (adamw)")
        if self.schedule != "onecycle":
            raise SettingError(f"protocol schedule {self.schedule!r} is not supported (onecycle)")
        check_float("protocol lr", self.lr, low=0, low_open=True)
        check_float("protocol weight_decay", self.weight_decay, low=0)
        check_float("protocol warmup_frac", self.warmup_frac, low=0, high=1, high_open=True)

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
