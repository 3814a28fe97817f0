#!/usr/bin/env bash
# The networked runtime's overhead: an experiment run by the simulator, then by `fedswift serve`
# with all its clients in one `fedswift join` process over loopback HTTP/2 (insecure), one after
# the other on this machine, twice each, alternating. Prints the median wall seconds per round of each and their ratio,
# and the coordinator's gap between a round's last update and the next round's first task.
#
#   benchmarks/network_overhead.sh [EXPERIMENT] [ROUNDS]     (default fmnist-fedavg-flower, 8)
set -euo pipefail
cd "$(dirname "$0")/.."
source benchmarks/lib.sh
exp="${1:-experiments/fmnist-fedavg-flower.yaml}"
rounds="${2:-8}"
bin="${FEDSWIFT_BIN:-.build/release/fedswift}"  # FEDSWIFT_BIN: another build, for a side-by-side run
out="${OUT:-runs/network-overhead}"
rm -rf "$out" && mkdir -p "$out"
clients=$(python3 -c "import yaml,sys; print(yaml.safe_load(open(sys.argv[1]))['partition']['clients'])" "$exp" 2>/dev/null \
  || grep -A3 '^partition' "$exp" | grep -o 'clients: *[0-9]*' | grep -o '[0-9]*')
# Twice each, alternating, so a machine that speeds up or slows down during the run weighs on both.
for rep in 1 2; do
  "$bin" simulate "$exp" --set rounds="$rounds" --out "$out/sim$rep" > "$out/sim$rep.log"
  "$bin" serve "$exp" --set rounds="$rounds" --listen 127.0.0.1:0 --insecure --state-dir "$out/net$rep" \
    > "$out/serve$rep.log" 2>&1 &
  serve=$!
  port=$(listening_port "$out/serve$rep.log" 127.0.0.1)
  "$bin" join "$exp" --set rounds="$rounds" --server 127.0.0.1:"$port" --client 0 --virtual-clients "$clients" \
    --insecure > "$out/join$rep.log" 2>&1
  wait "$serve"
done
python3 - "$out" <<'PY'
import json, statistics, sys
out = sys.argv[1]
def per_round(kind):
    times = []
    for rep in (1, 2):
        walls = [json.loads(l)["wall_time_s"] for l in open(f"{out}/{kind}{rep}/metrics.jsonl")]
        times += [b - a for a, b in zip([0.0] + walls[:-1], walls)]
    return statistics.median(times)
sim, net = per_round("sim"), per_round("net")
print(f"median s/round: simulator {sim:.3f}, served over loopback {net:.3f}, ratio {net / sim:.3f}")
PY
grep -h "between rounds" "$out"/serve?.log || true
cmp -s "$out/sim1/model.safetensors" "$out/net1/model.safetensors" && cmp -s "$out/sim1/model.safetensors" "$out/net2/model.safetensors" \
  && echo "final models: identical" || echo "final models: differ"
