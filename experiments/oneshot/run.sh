#!/usr/bin/env bash
# One-shot FL on Fashion-MNIST (issue 13): every (alpha, clients, family, seed) of the lists below
# runs `fedswift oneshot` on experiments/oneshot/base.yaml into
# experiments/oneshot/results/a<alpha>-m<clients>/<family>/seed-<s>; a finished run (its
# results.json) is kept, so the script resumes after an interruption. Then
# scripts/oneshot_table.py rewrites the one-shot section of docs/EXPERIMENTS.md.
# Families: baselines (one round of local training shared by FedAvg, Ensemble and FedDF),
# fusefl-k2 and fusefl-k4 (the 1x1-convolution adaptor), fusefl-k2-mean (the averaging adaptor).
#   SETTINGS="a0.1-m5 a0.3-m5" FAMILIES="baselines fusefl-k2" SEEDS="0 1" experiments/oneshot/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
FEDSWIFT=${FEDSWIFT:-.build/release/fedswift}
OUT=${OUT:-experiments/oneshot/results}
SETTINGS=${SETTINGS:-"a0.1-m5 a0.3-m5 a0.5-m5"}
FAMILIES=${FAMILIES:-"baselines fusefl-k2 fusefl-k4"}
SEEDS=${SEEDS:-"0 1"}
# The averaging adaptor at alpha 0.1, and the client-scaling row (M = 10), both seeds.
EXTRA=${EXTRA:-"a0.1-m5:fusefl-k2-mean a0.1-m10:baselines a0.1-m10:fusefl-k2"}
[ -x "$FEDSWIFT" ] || swift build -c release --product fedswift

family_args() {
    case "$1" in
        baselines) echo "--set oneshot.method=[fedavg,ensemble,feddf]" ;;
        fusefl-k2) echo "--set oneshot.method=fusefl --set oneshot.blocks=2" ;;
        fusefl-k4) echo "--set oneshot.method=fusefl --set oneshot.blocks=4" ;;
        fusefl-k2-mean) echo "--set oneshot.method=fusefl --set oneshot.blocks=2 --set oneshot.adaptor=mean" ;;
        *) echo "unknown family $1" >&2; exit 2 ;;
    esac
}
run() {  # setting family seed
    local dir="$OUT/$1/$2/seed-$3"
    if [ -f "$dir/results.json" ]; then
        echo "kept $dir"
        return
    fi
    local alpha=${1%%-m*} clients=${1##*-m}
    alpha=${alpha#a}
    echo "== $1 $2 seed $3"
    # shellcheck disable=SC2046
    "$FEDSWIFT" oneshot experiments/oneshot/base.yaml --set "partition.alpha=$alpha" \
        --set "partition.clients=$clients" $(family_args "$2") --set "seed=$3" --out "$dir" > "$dir.log" 2>&1 \
        || { mkdir -p "$dir"; cat "$dir.log"; exit 1; }
    mv "$dir.log" "$dir/run.log"
}
for seed in $SEEDS; do
    for setting in $SETTINGS; do
        for family in $FAMILIES; do mkdir -p "$OUT/$setting/$family"; run "$setting" "$family" "$seed"; done
    done
    for pair in $EXTRA; do mkdir -p "$OUT/${pair%%:*}/${pair##*:}"; run "${pair%%:*}" "${pair##*:}" "$seed"; done
done
python3 scripts/oneshot_table.py "$OUT" docs/EXPERIMENTS.md
echo "updated docs/EXPERIMENTS.md"
