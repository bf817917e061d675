#!/usr/bin/env bash
# After scripts/clean_reference_corpus.sh has finished (issue 11): fill the zero-cost columns of the rows built before
# they existed, move the corpus to the current file names, rank the time predictors on the clean label, recompute
# measured-vs-roofline, and regenerate the data card. Each step is resumable or idempotent: rerun to continue.
# The leaderboard and compare record times: run with nothing else heavy on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
C=results/corpus/mnist1d_clean
narch zc --corpus $C
[ -e $C/manifest.json ] && narch corpus migrate $C
# The corpus was timed on two CPUs (results/corpus/REFERENCE.md): a time label is ranked and compared per device.
INTEL="device_name=Intel(R) Xeon(R) Processor"
narch leaderboard --corpus $C --out results/leaderboards/mnist1d_clean/train_time_robust_s \
  --target train_time_robust_s --where "n_train=3000,$INTEL" --sizes 16,64,256,1024 --seeds 5 --trials 0 \
  --predictors mean,flops,params,ridge,random_forest,gbdt,mlp,roofline_time,roofline_gbdt,zc_gbdt
narch hardware compare --corpus $C --where "$INTEL" --out results/hardware/compare_mnist1d_clean
narch hardware compare --corpus $C --where "device_name=AMD EPYC" --out results/hardware/compare_mnist1d_clean_epyc
python benchmarks/label_spread.py --corpus $C --out results/timing/label_spread_mnist1d_clean.json
narch corpus datacard $C results/corpus/mnist1d_ref results/corpus/digits_ref --reference --out results/DATACARD.md
