#!/usr/bin/env bash
# Runs every compression experiment for Dirichlet α = 0.5 and α = 0.1, then regenerates
# docs/EXPERIMENTS.md from the metrics. A finished run (all rounds in its metrics.jsonl) is kept,
# so the script resumes after an interruption. About 4 minutes per run on 2 cores.
#   FEDSWIFT=path/to/fedswift OUT=runs/compression ROUNDS=40 experiments/compression/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
FEDSWIFT=${FEDSWIFT:-.build/release/fedswift}
OUT=${OUT:-runs/compression}
ROUNDS=${ROUNDS:-40}
VARIANTS=${VARIANTS:-"dense topk topk-ef bcrs bcrs-opwa qsgd powersgd"}
ALPHAS=${ALPHAS:-"0.5 0.1"}
[ -x "$FEDSWIFT" ] || swift build -c release --product fedswift
for alpha in $ALPHAS; do
    for v in $VARIANTS; do
        dir="$OUT/alpha-$alpha/$v"
        if [ -f "$dir/metrics.jsonl" ] && [ "$(wc -l < "$dir/metrics.jsonl")" -ge "$ROUNDS" ]; then
            echo "kept $dir"
            continue
        fi
        echo "== $v, alpha $alpha"
        "$FEDSWIFT" simulate "experiments/compression/$v.yaml" --set "partition.alpha=$alpha" --set "rounds=$ROUNDS" --out "$dir"
    done
done
python3 scripts/compression_table.py "$OUT" > docs/EXPERIMENTS.md
echo "wrote docs/EXPERIMENTS.md"
