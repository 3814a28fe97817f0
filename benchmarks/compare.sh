#!/usr/bin/env bash
# FedSwift beside its baseline, in one sitting, each comparison printed as a ratio:
#   1. training and inference throughput against PyTorch 2.15 (`fedswift bench` and
#      torch_train_bench.py, alternating runs so machine noise hits both; medians);
#   2. the Flower-equivalent experiment (experiments/fmnist-fedavg-flower.yaml against
#      flower_sim.py, Flower 1.41 on Ray): median seconds per round and peak memory of the
#      whole process tree (treemon.py).
# Installs the baseline first (setup-baseline.sh) and builds FedSwift (make build).
#
#   benchmarks/compare.sh [--runs N] [--rounds R] [--only throughput|flower] [--out DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
RUNS=3 ROUNDS=12 ONLY="" OUT="$root/runs/compare"
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --only) ONLY="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
PY="$("$here/setup-baseline.sh")"
make -s -C "$root" build >/dev/null
FED="$root/.build/release/fedswift"
mkdir -p "$OUT"
echo "cpu: $("$FED" info --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["cpu"], "|", d["backend"], d["version"], d["isa"])')"
echo "baseline: $("$PY" -c 'import torch, flwr; print("torch", torch.__version__, "| flwr", flwr.__version__)' 2>/dev/null)"

throughput() {  # mode model batch threads
  local mode=$1 model=$2 bs=$3 threads=$4 a=() b=()
  for _ in $(seq "$RUNS"); do
    a+=("$("$FED" bench "$mode" --model "$model" --batch-size "$bs" --threads "$threads" --json | tail -n 1)")
    b+=("$(cd "$here" && OMP_NUM_THREADS="$threads" "$PY" torch_train_bench.py "$mode" --model "$model" \
      --batch-size "$bs" --threads "$threads" --json | tail -n 1)")
  done
  python3 - "$mode $model batch $bs, $threads thread(s)" "${#a[@]}" "${a[@]}" "${b[@]}" <<'PY'
import json, statistics, sys
label, n = sys.argv[1], int(sys.argv[2])
rows = [json.loads(s) for s in sys.argv[3:]]
fa = [r["samples_per_second"] for r in rows[:n]]
fb = [r["samples_per_second"] for r in rows[n:]]
ma, mb = statistics.median(fa), statistics.median(fb)
runs = "  ".join(f"{x:,.0f}/{y:,.0f}" for x, y in zip(fa, fb))
print(f"{label:<30} fedswift {ma:>9,.0f}  pytorch {mb:>9,.0f} samples/s  ratio {ma / mb:5.2f}   (runs: {runs})")
PY
}

if [ "$ONLY" != flower ]; then
  echo "== throughput, median of $RUNS alternating runs (FedSwift/PyTorch) =="
  throughput train cnn 32 1
  throughput train cnn 32 2
  throughput infer cnn 100 1
  throughput train mlp 32 1
fi

if [ "$ONLY" != throughput ]; then
  echo "== fmnist-fedavg-flower, $ROUNDS rounds each, one after the other =="
  (cd "$here" && "$PY" treemon.py "$OUT/flower_tree.json" -- "$PY" flower_sim.py --max-rounds "$ROUNDS" \
    --budget-s 100000 --json "$OUT/flower_sim.json" > "$OUT/flower_sim.log" 2>&1)
  rm -rf "$OUT/fedswift-flower"
  "$PY" "$here/treemon.py" "$OUT/fedswift_tree.json" -- "$FED" simulate "$root/experiments/fmnist-fedavg-flower.yaml" \
    --set rounds="$ROUNDS" --out "$OUT/fedswift-flower" > "$OUT/fedswift_sim.log" 2>&1
  python3 - "$OUT" <<'PY'
import json, statistics, sys
out = sys.argv[1]
flower = json.load(open(f"{out}/flower_sim.json"))
rows = [json.loads(l) for l in open(f"{out}/fedswift-flower/metrics.jsonl")]
walls = [r["wall_time_s"] for r in rows]
per_round = [b - a for a, b in zip([0.0] + walls[:-1], walls)]
fs = statistics.median(per_round)
fl = flower["median_round_s"]
mem_fs = json.load(open(f"{out}/fedswift_tree.json"))["peak_sum_pss_mib"]
mem_fl = json.load(open(f"{out}/flower_tree.json"))["peak_sum_pss_mib"]
print(f"{'median s/round':<30} fedswift {fs:9.3f}  flower  {fl:9.3f}  ratio {fs / fl:5.2f}")
print(f"{'peak memory (PSS, MiB)':<30} fedswift {mem_fs:9.0f}  flower  {mem_fl:9.0f}  ratio {mem_fs / mem_fl:5.2f}")
print(f"{'accuracy after the last round':<30} fedswift {rows[-1]['test_accuracy']:9.4f}  flower  {flower['final_acc']:9.4f}")
PY
fi
