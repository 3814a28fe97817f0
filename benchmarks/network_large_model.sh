#!/usr/bin/env bash
# A model of 100 MB and more through served rounds: `mlp-WIDTH` (default mlp-4800: 26.9 million
# parameters, 107.6 MB of float32), 2 clients a round in one `fedswift join` process over loopback
# HTTP/2, dense updates, with STRATEGY (default fedavg; scaffold also sends a control vector of the
# model's size each way). Prints the coordinator's and the clients' peak resident memory (GNU time)
# as multiples of the model's size, and the bytes each round moved.
#
#   benchmarks/network_large_model.sh [WIDTH] [STRATEGY] [ROUNDS]     (default 4800 fedavg 2)
set -euo pipefail
cd "$(dirname "$0")/.."
source benchmarks/lib.sh
width="${1:-4800}"
strategy="${2:-fedavg}"
rounds="${3:-2}"
bin="${FEDSWIFT_BIN:-.build/release/fedswift}"  # FEDSWIFT_BIN: another build, for a side-by-side run
out="${OUT:-runs/network-large-$width-$strategy}"
rm -rf "$out" && mkdir -p "$out"
cat > "$out/large.yaml" <<YAML
name: large-$width-$strategy
seed: 1
rounds: $rounds
workers: 1
model: mlp-$width
partition: {scheme: iid, clients: 2}
clients_per_round: 2
local: {steps: 1, batch_size: 16, lr: 0.01}
strategy: {name: $strategy}
evaluation: {every: $rounds, samples: 200, batch_size: 50}
YAML
/usr/bin/time -v "$bin" serve "$out/large.yaml" --listen 127.0.0.1:0 --insecure --state-dir "$out/net" \
  > "$out/serve.log" 2> "$out/serve.time" &
serve=$!
port=$(listening_port "$out/serve.log" 127.0.0.1)
/usr/bin/time -v "$bin" join "$out/large.yaml" --server 127.0.0.1:"$port" --client 0 --virtual-clients 2 --insecure \
  --threads 1 > "$out/join.log" 2> "$out/join.time"
wait "$serve" || { tail -20 "$out/serve.log" "$out/serve.time"; exit 1; }
python3 - "$out" "$width" <<'PY'
import json, re, sys
out, w = sys.argv[1], int(sys.argv[2])
params = 784 * w + w + w * w + w + w * 10 + 10
model_mb = 4 * params / 2**20
def rss(path):
    return int(re.search(r"Maximum resident set size \(kbytes\): *(\d+)", open(path).read()).group(1)) / 1024
rows = [json.loads(l) for l in open(f"{out}/net/metrics.jsonl")]
print(f"mlp-{w}: {params:,} parameters, {model_mb:.1f} MiB; {len(rows)} rounds, "
      f"completed {[r['completed'] for r in rows]}, bytes down/up a round {rows[0]['bytes_down']:,}/{rows[0]['bytes_up']:,}")
print(f"wall s/round: {', '.join(str(round(r['wall_time_s'], 2)) for r in rows)} (cumulative)")
c, j = rss(f"{out}/serve.time"), rss(f"{out}/join.time")
print(f"coordinator peak RSS {c:.0f} MiB = {c / model_mb:.1f}x the model; "
      f"join process (2 clients) {j:.0f} MiB = {j / model_mb:.1f}x")
PY
