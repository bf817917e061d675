#!/usr/bin/env bash
# Builds results/corpus/mnist1d_clean, the MNIST-1D reference corpus with clean time labels (issue 11; resumable:
# rerun to continue, finished runs are skipped). Same plan as mnist1d_ref (scripts/reference_corpora.sh), but every
# run is timed on a quiet machine (--wait-quiet holds it until other work leaves the cores and trains it again when
# other work competed while it ran), and the noise-floor repeats run right after their first runs, not an hour later.
# Run it with nothing else heavy on the machine: taskset -c 0 scripts/clean_reference_corpus.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=results/corpus/mnist1d_clean
B="narch build --task mnist1d --threads 1 --epochs 10 --quiet --wait-quiet --out $OUT"
# 1. The noise floor first: the first 100 networks of the plan with training seeds 1, 2 and 3, back to back.
$B --archs 100 --seed 1
for s in 2 3; do
  $B --archs-from results/corpus/mnist1d_ref_noise_archs.jsonl --seed $s
done
# 2. All 3,000 networks (fresh samples and one-move edits; the first 100 are already there).
$B --archs 3000 --seed 1
# 3. Data-set size as an input: the first 300 on 1,000 and on 300 training examples.
for n in 1000 300; do
  $B --archs 300 --seed 1 --n-train $n
done
narch corpus compact $OUT
