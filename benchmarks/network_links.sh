#!/usr/bin/env bash
# Real links against the simulator's virtual clock. For each uplink of 2, 10 and 50 Mbit/s: one
# client in a network namespace of its own, behind a veth pair whose client side is shaped with
# `tc qdisc ... tbf` (the coordinator's side is not: downloads run at the veth's speed), runs an
# `mlp` experiment with dense float32 updates against `fedswift serve` in the root namespace. The
# simulator then runs the same experiment with that device profile: the uplink, an unshaped
# downlink, and the compute speed the served client measured (its compute seconds per sample).
# Prints the real and the predicted seconds per round and their ratio. Needs root (ip netns, tc);
# the namespaces and links are removed on exit.
#
#   benchmarks/network_links.sh [ROUNDS]     (default 6)
set -euo pipefail
cd "$(dirname "$0")/.."
source benchmarks/lib.sh
rounds="${1:-6}"
bin="${FEDSWIFT_BIN:-.build/release/fedswift}"  # FEDSWIFT_BIN: another build, for a side-by-side run
out="${OUT:-runs/network-links}"
rm -rf "$out" && mkdir -p "$out"
cleanup() {
  for i in 1 2 3; do
    ip link del "fsw-r$i" 2>/dev/null || true
    ip netns del "fsw-c$i" 2>/dev/null || true
  done
}
trap cleanup EXIT
cleanup
i=0
for mbit in 2 10 50; do
  i=$((i + 1))
  ns="fsw-c$i"
  ip netns add "$ns"
  ip link add "fsw-r$i" type veth peer name "fsw-n$i"
  ip link set "fsw-n$i" netns "$ns"
  ip addr add "10.231.$i.1/24" dev "fsw-r$i"
  ip link set "fsw-r$i" up
  ip netns exec "$ns" ip addr add "10.231.$i.2/24" dev "fsw-n$i"
  ip netns exec "$ns" ip link set "fsw-n$i" up
  ip netns exec "$ns" ip link set lo up
  ip netns exec "$ns" tc qdisc add dev "fsw-n$i" root tbf rate "${mbit}mbit" burst 32kb latency 200ms
  exp="$out/links-$mbit.yaml"
  cat > "$exp" <<YAML
name: links-$mbit
seed: 2
rounds: $rounds
workers: 1
model: mlp
partition: {scheme: iid, clients: 1}
clients_per_round: 1
local: {steps: 2, batch_size: 16, lr: 0.05}
evaluation: {every: $rounds, samples: 500}
YAML
  "$bin" serve "$exp" --listen "10.231.$i.1:0" --insecure --state-dir "$out/net-$mbit" > "$out/serve-$mbit.log" 2>&1 &
  serve=$!
  port=$(listening_port "$out/serve-$mbit.log" "10.231.$i.1")
  ip netns exec "$ns" "$bin" join "$exp" --server "10.231.$i.1:$port" --client 0 --insecure --threads 1 \
    > "$out/join-$mbit.log" 2>&1
  wait "$serve"
  # The device profile: this uplink, an unshaped downlink, the measured compute speed.
  ms=$(python3 - "$out/net-$mbit/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
samples = 2 * 16  # steps x batch size, per round
print(1000 * sum(r["client_compute_s"] for r in rows) / (samples * len(rows)))
PY
)
  "$bin" simulate "$exp" --out "$out/sim-$mbit" \
    --set devices.uplink_kbps=$((mbit * 1000)) --set devices.downlink_kbps=10000000 \
    --set devices.compute_ms_per_sample="$ms" > "$out/sim-$mbit.log"
done
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
print(f"{'uplink':>8} {'served s/round':>15} {'virtual clock':>14} {'ratio':>6} {'bytes up/round':>15}")
for mbit in (2, 10, 50):
    net = [json.loads(l) for l in open(f"{out}/net-{mbit}/metrics.jsonl")]
    sim = [json.loads(l) for l in open(f"{out}/sim-{mbit}/metrics.jsonl")]
    # virtual_time_s is cumulative: the served run's is the real time from each round's first
    # task to its last update; the simulator's its virtual clock.
    real = net[-1]["virtual_time_s"] / len(net)
    predicted = sim[-1]["virtual_time_s"] / len(sim)
    print(f"{mbit:>5} Mb {real:>15.3f} {predicted:>14.3f} {real / predicted:>6.3f} {net[0]['bytes_up']:>15}")
PY
