"""The architecture spec, its validation, moves, sampling and seed networks. Imports no torch."""

from narch.search_space.io import deepest, load_networks, resolve_network, write_jsonl
from narch.search_space.layer import Layer, Op, SpecError, add, avgpool, conv, dense, dropout, maxpool, sep_conv
from narch.search_space.moves import (
    Move,
    MoveError,
    MoveKind,
    MoveVocab,
    apply_move,
    candidate_moves,
    insert,
    insert_add,
    legal_moves,
    remove,
    scale,
)
from narch.search_space.sampler import PlanConfig, PlannedNet, SamplerBounds, plan_networks, random_walk, sample_network
from narch.search_space.seeds import SEEDS, seed_network
from narch.search_space.spec import SCHEMA_VERSION, SCHEMA_VERSIONS, Network
from narch.search_space.trace import LayerTrace, Shape, Trace, concrete_shapes, count_params, trace_network
from narch.search_space.validate import LIMITS, Limits, infer_shapes, validate

SEARCH_SPACE_VERSION = f"1.{SCHEMA_VERSION}"

__all__ = [
    "LIMITS",
    "SCHEMA_VERSION",
    "SCHEMA_VERSIONS",
    "SEARCH_SPACE_VERSION",
    "SEEDS",
    "Layer",
    "LayerTrace",
    "Limits",
    "Move",
    "MoveError",
    "MoveKind",
    "MoveVocab",
    "Network",
    "Op",
    "PlanConfig",
    "PlannedNet",
    "SamplerBounds",
    "Shape",
    "SpecError",
    "Trace",
    "add",
    "apply_move",
    "avgpool",
    "candidate_moves",
    "concrete_shapes",
    "conv",
    "count_params",
    "deepest",
    "dense",
    "dropout",
    "infer_shapes",
    "insert",
    "insert_add",
    "legal_moves",
    "load_networks",
    "maxpool",
    "plan_networks",
    "random_walk",
    "remove",
    "resolve_network",
    "sample_network",
    "scale",
    "seed_network",
    "sep_conv",
    "trace_network",
    "validate",
    "write_jsonl",
]
