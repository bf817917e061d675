"""The corpus schema: every column with its Arrow type, unit and meaning. The one place columns are defined."""

from __future__ import annotations

import pyarrow as pa

CORPUS_SCHEMA_VERSION = 1

_S, _I, _F, _LF, _LI = pa.string(), pa.int64(), pa.float64(), pa.list_(pa.float64()), pa.list_(pa.int64())

# name, type, unit, meaning
COLUMNS: list[tuple[str, pa.DataType, str, str]] = [
    ("arch_id", _S, "", "sha256 of the canonical arch JSON, 16 hex digits"),
    ("arch_json", _S, "", "canonical JSON of the network spec"),
    ("parent_arch_id", _S, "", "the network this one was edited from (null for fresh samples)"),
    ("move", _S, "", "JSON of the move that made it from the parent"),
    ("task", _S, "", "task name"),
    ("n_train", _I, "examples", "training-set size"),
    ("n_classes", _I, "classes", "number of classes"),
    ("input_shape", _LI, "", "input shape (C, *spatial)"),
    ("class_balance", _F, "0..1", "normalised entropy of the training labels (1 = balanced)"),
    ("linear_probe_acc", _F, "fraction", "logistic regression on raw inputs, validation accuracy (regularity)"),
    ("centroid_acc", _F, "fraction", "nearest class centroid on raw inputs, validation accuracy"),
    ("protocol_hash", _S, "", "sha256 of the training protocol JSON (the corpus manifest holds it)"),
    ("epochs", _I, "epochs", "training epochs"),
    ("batch_size", _I, "examples", "training batch size"),
    ("optimizer", _S, "", "optimizer name"),
    ("lr", _F, "", "peak learning rate"),
    ("seed", _I, "", "training seed (init and batch order)"),
    ("val_acc", _F, "fraction", "validation accuracy after the last epoch"),
    ("test_acc", _F, "fraction", "test accuracy after the last epoch"),
    ("train_loss", _F, "nats", "mean training loss of the last epoch"),
    ("val_acc_curve", _LF, "fraction", "validation accuracy after each epoch (learning curve)"),
    ("train_loss_curve", _LF, "nats", "mean training loss of each epoch"),
    ("params", _I, "count", "trainable parameters"),
    ("model_size_bytes", _I, "bytes", "parameters and buffers"),
    ("flops_fwd", _F, "FLOP", "forward FLOPs per example (hardware cost model)"),
    ("flops_train_step", _F, "FLOP", "forward+backward+optimizer FLOPs per training step"),
    ("bytes_train_step", _F, "bytes", "bytes moved per training step (cost model)"),
    ("arithmetic_intensity", _F, "FLOP/byte", "flops_train_step / bytes_train_step"),
    ("roofline_train_time_s", _F, "s", "roofline training time on the device that ran it"),
    ("peak_mem_bytes", _I, "bytes", "CUDA: max allocated; CPU: params+grads+AdamW state+saved activations"),
    ("train_time_s", _F, "s", "wall time of the training epochs (validation excluded)"),
    ("epoch_time_s_curve", _LF, "s", "wall time of each training epoch"),
    ("epoch_time_p50_s", _F, "s", "median epoch time"),
    ("epoch_time_p90_s", _F, "s", "90th percentile epoch time"),
    ("step_time_p50_s", _F, "s", "median step time after warm-up"),
    ("step_time_p90_s", _F, "s", "90th percentile step time after warm-up"),
    ("latency_bs1_ms", _F, "ms", "median eval forward latency at batch 1"),
    ("latency_bsN_ms", _F, "ms", "median eval forward latency at batch latency_batch_n"),
    ("latency_batch_n", _I, "examples", "the N of latency_bsN_ms"),
    ("energy_j", _F, "J", "GPU energy-counter delta over training (null on CPU)"),
    ("power_w_mean", _F, "W", "mean sampled GPU power"),
    ("power_w_max", _F, "W", "max sampled GPU power"),
    ("gpu_util_pct_mean", _F, "%", "mean sampled GPU utilisation"),
    ("sm_clock_mhz_mean", _F, "MHz", "mean sampled SM clock"),
    ("gpu_mem_used_bytes_max", _I, "bytes", "max sampled GPU memory used (whole device)"),
    ("device_kind", _S, "", "cpu or cuda"),
    ("device_name", _S, "", "GPU name or CPU model"),
    ("driver", _S, "", "NVIDIA driver version"),
    ("cuda_version", _S, "", "CUDA version torch was built with"),
    ("torch_version", _S, "", "torch version"),
    ("cpu_model", _S, "", "CPU model name"),
    ("threads", _I, "threads", "torch intra-op threads"),
    ("concurrency", _I, "runs", "trainings sharing the device at once"),
    ("load_avg_1m", _F, "processes", "host 1-minute load average when the run ended (other work disturbs timings)"),
    ("host", _S, "", "host name"),
    ("git_rev", _S, "", "git revision of the builder"),
    ("builder_version", _S, "", "neural-architect version"),
    ("created_at", _S, "ISO 8601 UTC", "when the row was written"),
    ("wall_time_s", _F, "s", "wall time of the whole run, measurements included"),
    ("status", _S, "", "ok, failed_oom, diverged, timeout or error"),
    ("error", _S, "", "one-line error of a failed run"),
]

# Columns added after schema v1 was first written, appended in order. Parts written before them still read
# (the reader inserts them as nulls), so adding a column here does not orphan a corpus; removing or retyping one does
# (that needs a CORPUS_SCHEMA_VERSION bump).
ADDED_COLUMNS: list[tuple[str, pa.DataType, str, str]] = [
    ("train_cpu_s", _F, "s", "CPU time of the process over the training epochs (all its threads; validation "
     "excluded): what the run consumed, insensitive to time slices lost to other work"),
    ("step_time_s_curve", _LF, "s", "wall time of every training step, the protocol's timing_warmup_steps "
     "included (CUDA: events)"),
    ("step_cpu_s_curve", _LF, "s", "process CPU time of every training step, warm-up included (null on CUDA)"),
    ("train_steps", _I, "steps", "training steps of the run (warm-up included)"),
    ("core_share", _F, "fraction", "train_cpu_s / (train_time_s x threads): the share of its cores the run got"),
    ("load_avg_1m_before", _F, "processes", "host 1-minute load average when the run started"),
    ("other_cpu_cores", _F, "cores", "mean number of cores busy with other work while it trained (host busy and "
     "stolen CPU time minus this process's, per second of training; /proc/stat)"),
    ("train_time_robust_s", _F, "s", "the CPU time label: an estimate of the uncontended training time that leaves "
     "out preempted steps (see TIME_LABEL and dataset_builder/measure.py robust_train_time)"),
    ("speed_probe_s", _F, "s", "CPU time of a fixed small conv forward+backward, the faster of before and after "
     "training (measure.speed_probe_s): how fast the core ran, to put labels on one host speed (null on CUDA)"),
    ("timing_tries", _I, "runs", "how many times the run was trained before its timing was kept (--wait-quiet "
     "trains again when other work competed during the run)"),
]
# Zero-cost proxies (dataset_builder/zero_cost.py), at initialisation, from one fixed minibatch of the run's training
# data (64 examples drawn with seed 0) and the run's training seed; conv and linear weights, the head included.
ZERO_COST: list[tuple[str, str, str]] = [
    ("params", "count", "trainable parameters"),
    ("flops", "FLOP", "forward FLOPs per example (2 x the shape trace's multiply-accumulates)"),
    ("l2_norm", "-", "sum over layers of the Frobenius norm of W"),
    ("synflow", "-", "float64, eval-mode BN, parameters and buffers made non-negative, input of ones: sum of "
     "abs(W * dR/dW), R the sum of the outputs (Tanaka et al. 2020); data-free"),
    ("zen", "-", "log of the mean over examples of sum abs(f(x) - f(x + 0.01 x')) for Gaussian x, x' (f: features "
     "before the global pooling, BN in training mode) plus the sum over BN layers of log sqrt(mean running "
     "variance) (Lin et al. 2021); data-free"),
    ("plain", "-", "sum of W * dL/dW, L the cross entropy of the minibatch"),
    ("snip", "-", "sum of abs(W * dL/dW) (Lee et al. 2019)"),
    ("grad_norm", "-", "sum over layers of the norm of dL/dW"),
    ("grasp", "-", "sum of -W * (H g), g = dL/dW, H the Hessian of L (Wang et al. 2020)"),
    ("fisher", "-", "per channel of every ReLU output a: 0.5 x mean over examples of (sum over positions of "
     "a * dL/da) squared, summed (Turner et al. 2020)"),
    ("jacov", "-", "J = d(sum of outputs)/dx per example; v the eigenvalues of corrcoef(J): "
     "-sum(log(v + 1e-5) + 1 / (v + 1e-5))"),
    ("naswot", "-", "binary codes c of every ReLU output; K = sum of c c^T + (1 - c)(1 - c)^T; log abs det K "
     "(Mellor et al. 2021)"),
    ("epe_nas", "-", "per class, C = corrcoef of its examples' rows of J; sum over classes of "
     "abs(sum of log(abs(C) + 1e-5)) (Lopes et al. 2021)"),
]
ZC_PREFIX = "zc_"
ZC_COLUMNS = [f"{ZC_PREFIX}{name}" for name, _, _ in ZERO_COST]
ADDED_COLUMNS += [(f"{ZC_PREFIX}{name}", _F, unit, f"zero-cost proxy: {meaning}") for name, unit, meaning in ZERO_COST]
ADDED_COLUMNS += [
    ("bench_index", _I, "", "imported rows: the public benchmark's own index of the network (NAS-Bench-201's "
     "index; null where the benchmark has none, as NAS-Bench-101)"),
    ("bench_arch", _S, "", "imported rows: the public benchmark's own name of the network (NAS-Bench-201's arch "
     "string, NAS-Bench-101's and EC-NAS's module hash); params and flops_fwd of imported rows are of that whole "
     "stacked network (dataset_builder/importers/bench_costs.py), not of the one-cell arch_json"),
    ("bench_cell", _S, "", "imported cell benchmarks: the cell as the benchmark defines it, JSON {\"adjacency\": "
     "upper-triangular 0/1 matrix, \"ops\": one per node, input first, output last}; NAS-Bench-201's ops on edges "
     "become nodes (importers/cells.py edges_to_nodes); what gin_cell reads"),
    ("worker_node", _S, "", "the cluster node that trained the run: ray:<node id> for a Ray task (nodes may share "
     "a host), slurm:<job>_<array task>@<node> in a Slurm job; null on one machine"),
]
COLUMNS = COLUMNS + ADDED_COLUMNS
ADDED = frozenset(name for name, *_ in ADDED_COLUMNS)

# Which column is the training-time label for each device kind, and why (the data card and `corpus info` say it).
TIME_LABEL: dict[str, tuple[str, str]] = {
    "cpu": ("train_time_robust_s", "per step position, the minimum of its CPU times over epochs: preempted steps "
            "and warm-up drop out (the lowest seed-to-seed spread of the candidates measured); it does not undo a "
            "shared core's slowdown or the host's drift, so time on a quiet machine (results/timing/README.md)"),
    "cuda": ("train_time_s", "epochs timed between device synchronisations, steps with CUDA events: the GPU does "
             "not share its time with other host processes"),
}

# Every field carries its unit ("" where it has none) and meaning as field metadata, so a part read with pyarrow
# (or any reader that keeps Arrow field metadata) documents itself.
SCHEMA = pa.schema([pa.field(name, typ, metadata={"unit": unit, "description": meaning})
                    for name, typ, unit, meaning in COLUMNS])
UNITS = {name: unit for name, _, unit, _ in COLUMNS}
STATUSES = ("ok", "failed_oom", "diverged", "timeout", "error")
KEY_COLUMNS = ("arch_id", "task", "n_train", "protocol_hash", "seed", "device_kind")
