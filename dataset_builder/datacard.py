"""DATACARD.md: every column with unit and meaning, the protocol, the hardware, the noise floor and caveats."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from narch.core.files import atomic_write_text
from narch.core.provenance import git_rev
from narch.dataset_builder.corpus import read_corpus, read_manifest
from narch.dataset_builder.schema import COLUMNS, CORPUS_SCHEMA_VERSION

# Timing figures whose seed-to-seed spread the card reports: (column or derived name, what it is).
TIME_FIGURES = (
    ("train_time_s", "wall"),
    ("train_cpu_s", "process CPU"),
    ("train_time_robust_s", "robust label"),
    ("label_at_probe_speed", "robust label at one probe speed"),
)


def _cv(col: str) -> pl.Expr:
    return (pl.col(col).std() / pl.col(col).mean()).alias(f"{col}_cv")


def noise_floor(df: pl.DataFrame) -> pl.DataFrame:
    """Seed-to-seed spread per network (networks trained with >= 2 seeds under the same setting): val_acc, and the
    coefficient of variation of every timing figure the rows carry (``label_at_probe_speed``: the robust label
    scaled by the corpus's median speed probe over the run's own, which takes out the host's speed drift)."""
    keys = ["arch_id", "task", "n_train", "protocol_hash", "device_kind"]
    ok = df.filter(pl.col("status") == "ok")
    if {"train_time_robust_s", "speed_probe_s"} <= set(ok.columns) and ok["speed_probe_s"].null_count() < ok.height:
        ok = ok.with_columns(
            (pl.col("train_time_robust_s") * pl.col("speed_probe_s").median() / pl.col("speed_probe_s"))
            .alias("label_at_probe_speed"))
    times = [c for c, _ in TIME_FIGURES if c in ok.columns and ok[c].null_count() < ok.height]
    return (
        ok.group_by(keys)
        .agg(
            pl.len().alias("seeds"),
            pl.col("val_acc").std().alias("val_acc_std"),
            (pl.col("val_acc").max() - pl.col("val_acc").min()).alias("val_acc_range"),
            *(_cv(c) for c in times),
        )
        .filter(pl.col("seeds") >= 2)
    )


def _time_noise(nf: pl.DataFrame) -> str:
    parts = [f"{what} `{c}` {nf[f'{c}_cv'].median():.1%}" for c, what in TIME_FIGURES if f"{c}_cv" in nf.columns]
    return "median coefficient of variation of " + ", ".join(parts)


def _corpus_section(path: Path) -> str:
    m = read_manifest(path)
    df = read_corpus(path)
    ok = df.filter(pl.col("status") == "ok")
    statuses = ", ".join(f"{s} {n}" for s, n in df.group_by("status").len().sort("status").iter_rows())
    sizes = ", ".join(f"{n}: {c}" for n, c in df.group_by("n_train").len().sort("n_train").iter_rows())
    devices = ", ".join(sorted(df["device_name"].unique().to_list()))
    threads = ", ".join(str(t) for t in sorted(df["threads"].unique().to_list()))
    nf = noise_floor(df)
    lines = [
        f"### `{path}`",
        f"- task **{m.task}**; {df.height} rows ({statuses}); {df['arch_id'].n_unique()} distinct networks; "
        f"{ok['parent_arch_id'].is_not_null().sum()} rows are one-move edits of a parent (`parent_arch_id`, `move`)",
        f"- rows per training-set size (`n_train`): {sizes}",
        "- protocol (`manifest.json`, hash `"
        + m.protocol_hash
        + "`): "
        + ", ".join(f"{k}={v}" for k, v in m.protocol.items()),
        f"- hardware: {devices}; torch threads {threads}; builder git revisions "
        + ", ".join(sorted(df["git_rev"].unique().to_list())),
    ]
    if ok.height:
        q = ok.select(
            pl.col("val_acc").quantile(0.1).alias("a10"),
            pl.col("val_acc").median().alias("a50"),
            pl.col("val_acc").quantile(0.9).alias("a90"),
            pl.col("train_time_s").quantile(0.1).alias("t10"),
            pl.col("train_time_s").median().alias("t50"),
            pl.col("train_time_s").quantile(0.9).alias("t90"),
        ).row(0, named=True)
        lines.append(
            f"- val_acc p10/median/p90: {q['a10']:.3f} / {q['a50']:.3f} / {q['a90']:.3f}; "
            f"train_time_s p10/median/p90: {q['t10']:.2f} / {q['t50']:.2f} / {q['t90']:.2f}"
        )
    if nf.height:
        s = nf.select(
            pl.len().alias("n"),
            pl.col("val_acc_std").median().alias("std"),
            pl.col("val_acc_range").quantile(0.9).alias("r90"),
        ).row(0, named=True)
        lines.append(
            f"- **noise floor** ({s['n']} networks with >= 2 training seeds): median seed-to-seed std of val_acc "
            f"{s['std']:.4f} (90th percentile of the range {s['r90']:.4f}); {_time_noise(nf)}. A predictor cannot "
            "be judged finer than this."
        )
    return "\n".join(lines) + "\n"


def write_datacard(corpora: list[Path], out: Path, *, command: str) -> Path:
    """Write the data card for these corpora."""
    cols = "\n".join(f"| `{n}` | {t} | {u or '-'} | {d} |" for n, t, u, d in COLUMNS)
    text = f"""# Data card: Neural Architect reference corpora

Made by `{command}` at git revision `{git_rev()}`. Corpus schema version {CORPUS_SCHEMA_VERSION}.

## What it is
Convolutional networks sampled from the search space of `search_space/` (fresh samples and one-move edits of seed
networks or earlier samples), each trained for real under one fixed protocol per corpus and measured: learning
curves, accuracy, training time, step-time percentiles, inference latency, parameters, model size, peak memory,
FLOPs and bytes from the cost model, the roofline time on the device that ran it, and full provenance. One row per
(network, task, training-set size, protocol, seed, device). Failed runs are rows with their `status` and `error`.

## Corpora
{chr(10).join(_corpus_section(p) for p in corpora)}
## Columns
| column | Arrow type | unit | meaning |
|---|---|---|---|
{cols}

## Known caveats
- Timings are wall-clock on the machine named in each row (`cpu_model`, `threads`, `host`). The reference corpora were
  built on a 2-core virtual machine with the build pinned to one core (`taskset -c 0`, 1 torch thread) while other
  work ran on the other core; shared caches and memory bandwidth still couple them. `load_avg_1m` records the host's
  load (both cores) when each run ended. Compare times within a corpus, or through the roofline/transfer models of
  `hardware/`, not across machines.
- `roofline_train_time_s` in a row was computed when the row was built, from the host's cached micro-benchmark at
  that moment (`narch hardware bench`); the cache changed while the reference corpora were built, so the column is
  not consistent across rows. `narch hardware compare` recomputes every row from one benchmark: use its reports.
- Repeat runs (training seeds 2 and 3) ran later than the seed-1 runs, under different background load; their times
  differ from seed 1 by a median ~25 %, so the time noise floor below mixes seed and session effects.
- About 5 % of planned networks contain a layer no later layer reads (an insert just before a layer with explicit
  inputs); it costs time and parameters but does not change the output.
- CPU `peak_mem_bytes` counts parameters, gradients, AdamW state and the activations autograd saves in one step
  (tensors counted, storages deduplicated); CUDA rows use the allocator's peak. They are not the same quantity.
- Training is short (the protocol's epochs); accuracies are those of that budget, not converged values. The learning
  curve (`val_acc_curve`) shows how far each network was from converging.
- MNIST-1D is generated by the `mnist1d` package with its default arguments (4,000 train / 1,000 test); our
  validation split takes 1,000 of the training examples (`data_seed` 0). `n_train` < 3,000 keeps a prefix of the
  seeded order.
- `arch_id` is the first 16 hex digits of the sha256 of the canonical JSON (`search_space.spec.SCHEMA_VERSION`
  inside); the same network always has the same id.

## Loading
```python
import polars as pl
df = pl.read_parquet("results/corpus/mnist1d_ref/*.parquet")

import pandas as pd                      # pyarrow engine; reads the folder of parts
df = pd.read_parquet("results/corpus/mnist1d_ref")

import duckdb
duckdb.sql("SELECT arch_id, val_acc, train_time_s FROM 'results/corpus/mnist1d_ref/*.parquet' WHERE status = 'ok'")

from narch.dataset_builder.corpus import read_corpus, scan_corpus  # check the manifest and every part's schema
df = read_corpus("results/corpus/mnist1d_ref")
ok = scan_corpus("results/corpus/mnist1d_ref").filter(pl.col("status") == "ok").collect()  # lazy, same checks
from narch.search_space import Network
net = Network.from_json(df["arch_json"][0])      # the spec; dataset_builder.model.build_model(net, (1, 40), 10)
```
Note: `pd.read_parquet(folder)` also tries `manifest.json`; pass the part files (`glob`) if your pandas complains.
"""
    atomic_write_text(out, text)
    return out
