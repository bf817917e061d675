#!/usr/bin/env bash
# Builds the reference corpora committed under results/corpus/ (resumable: rerun to continue).
# On a 2-core machine shared with other work, pin it to one core: taskset -c 0 scripts/reference_corpora.sh
set -euo pipefail
cd "$(dirname "$0")/.."
B="narch build --threads 1 --epochs 10 --quiet"
# 1. MNIST-1D: 3,000 networks (fresh samples and one-move edits), full training set.
$B --task mnist1d --archs 3000 --seed 1 --out results/corpus/mnist1d_ref
# 2. The noise floor: the first 100 of them again with training seeds 2 and 3.
python - <<'PY'
from narch.search_space import plan_networks, write_jsonl
write_jsonl([p.net for p in plan_networks(100, 1)], "results/corpus/mnist1d_ref_noise_archs.jsonl")
PY
for s in 2 3; do
  $B --task mnist1d --archs-from results/corpus/mnist1d_ref_noise_archs.jsonl --seed $s --out results/corpus/mnist1d_ref
done
# 3. Data-set size as an input: 300 of them on 1,000 and on 300 training examples.
for n in 1000 300; do
  $B --task mnist1d --archs 300 --seed 1 --n-train $n --out results/corpus/mnist1d_ref
done
# 4. digits: 1,000 networks.
$B --task digits --archs 1000 --seed 1 --out results/corpus/digits_ref
