#!/usr/bin/env bash
# Many client sessions against one coordinator on this machine: SESSIONS clients of `mlp` on an
# IID partition of Fashion-MNIST, 100 of them selected a round, hosted by PROCS `fedswift join`
# processes of virtual clients (each its own session) over loopback HTTP/2. Prints the seconds per
# round, how long the sessions took to connect, and the coordinator's peak resident memory and CPU
# seconds (GNU time); the join processes' peak memory beside it.
#
#   benchmarks/network_scale.sh [SESSIONS] [PROCS] [ROUNDS]     (default 1000 4 5)
set -euo pipefail
cd "$(dirname "$0")/.."
source benchmarks/lib.sh
sessions="${1:-1000}"
procs="${2:-4}"
rounds="${3:-5}"
bin="${FEDSWIFT_BIN:-.build/release/fedswift}"  # FEDSWIFT_BIN: another build, for a side-by-side run
out="${OUT:-runs/network-scale-$sessions}"
rm -rf "$out" && mkdir -p "$out"
cat > "$out/scale.yaml" <<YAML
name: scale-$sessions
seed: 1
rounds: $rounds
workers: 1
model: mlp
partition: {scheme: iid, clients: $sessions}
clients_per_round: ${PER_ROUND:-100}
local: {steps: 2, batch_size: 16, lr: 0.05}
evaluation: {every: $rounds, samples: 1000}
YAML
start=$(date +%s.%N)
/usr/bin/time -v "$bin" serve "$out/scale.yaml" --listen 127.0.0.1:0 --insecure --state-dir "$out/net" \
  --join-timeout 1200 > "$out/serve.log" 2> "$out/serve.time" &
serve=$!
port=$(listening_port "$out/serve.log" 127.0.0.1)
per=$(( (sessions + procs - 1) / procs ))
pids=()
for p in $(seq 0 $(( procs - 1 ))); do
  first=$(( p * per ))
  n=$(( sessions - first < per ? sessions - first : per ))
  /usr/bin/time -v "$bin" join "$out/scale.yaml" --server 127.0.0.1:"$port" --client "$first" \
    --virtual-clients "$n" --insecure --threads 1 --patience 1200 > "$out/join-$p.log" 2> "$out/join-$p.time" &
  pids+=($!)
done
# The first round starts once every session is connected.
for _ in $(seq 12000); do grep -q "round 1/" "$out/serve.log" && break; sleep 0.1; done
wait "$serve" || { echo "serve failed:"; tail -20 "$out/serve.log" "$out/serve.time"; exit 1; }
for pid in "${pids[@]}"; do wait "$pid" || true; done
python3 - "$out" "$sessions" "$procs" "$start" <<'PY'
import json, re, statistics, sys, glob
out, sessions, procs, start = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
rows = [json.loads(l) for l in open(f"{out}/net/metrics.jsonl")]
walls = [r["wall_time_s"] for r in rows]
per = [b - a for a, b in zip([0.0] + walls[:-1], walls)]
def field(path, name):
    m = re.search(re.escape(name) + r": *([0-9.:]+)", open(path).read())
    return m.group(1) if m else "0"
serve = f"{out}/serve.time"
cpu = float(field(serve, "User time (seconds)")) + float(field(serve, "System time (seconds)"))
rss = int(field(serve, "Maximum resident set size (kbytes)")) / 1024
wall = field(serve, "Elapsed (wall clock) time (h:mm:ss or m:ss)")
joins = [int(field(p, "Maximum resident set size (kbytes)")) / 1024 for p in sorted(glob.glob(f"{out}/join-*.time"))]
connect = re.search(r"clients=(\d+) seconds=([0-9.]+)", open(serve).read())
print(f"{sessions} sessions in {procs} join processes, 100 a round, {len(rows)} rounds")
if connect:
    print(f"all {connect.group(1)} sessions connected {float(connect.group(2)):.1f} s after the coordinator listened")
print(f"s/round: median {statistics.median(per):.3f} (each: {', '.join(f'{x:.2f}' for x in per)})")
print(f"completed per round: {[r['completed'] for r in rows]}")
print(f"coordinator: peak RSS {rss:.0f} MiB, CPU {cpu:.1f} s over {wall} wall")
print(f"join processes: peak RSS {', '.join(f'{j:.0f}' for j in joins)} MiB")
PY
