#!/usr/bin/env bash
# Runs every compression experiment for Dirichlet α = 0.5 and α = 0.1 and seeds 0, 1 and 2, then
# regenerates the compression section of docs/EXPERIMENTS.md from the metrics. A finished run (all rounds in its
# metrics.jsonl) is kept, so the script resumes after an interruption. About 3–4 minutes per run
# on 2 cores (42 runs: about 2.5 hours).
#   FEDSWIFT=path/to/fedswift OUT=runs/compression ROUNDS=40 SEEDS="0 1 2" experiments/compression/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
FEDSWIFT=${FEDSWIFT:-.build/release/fedswift}
OUT=${OUT:-runs/compression}
ROUNDS=${ROUNDS:-40}
VARIANTS=${VARIANTS:-"dense topk topk-ef bcrs bcrs-opwa qsgd powersgd"}
ALPHAS=${ALPHAS:-"0.5 0.1"}
SEEDS=${SEEDS:-"0 1 2"}
[ -x "$FEDSWIFT" ] || swift build -c release --product fedswift
for seed in $SEEDS; do
    for alpha in $ALPHAS; do
        for v in $VARIANTS; do
            dir="$OUT/seed-$seed/alpha-$alpha/$v"
            if [ -f "$dir/metrics.jsonl" ] && [ "$(wc -l < "$dir/metrics.jsonl")" -ge "$ROUNDS" ]; then
                echo "kept $dir"
                continue
            fi
            echo "== $v, alpha $alpha, seed $seed"
            "$FEDSWIFT" simulate "experiments/compression/$v.yaml" --set "partition.alpha=$alpha" \
                --set "rounds=$ROUNDS" --set "seed=$seed" --out "$dir"
        done
    done
done
mkdir -p docs
python3 scripts/compression_table.py "$OUT" | python3 scripts/doc_sections.py docs/EXPERIMENTS.md compression
echo "wrote docs/EXPERIMENTS.md"
