#!/usr/bin/env bash
# A mixed Flower federation, measured (issue 14; not part of the test suite): FedSwift nodes
# (`fedswift flower-node`) and Python SuperNodes running the PyTorch ClientApp of flower/ in one
# run of Flower's own FedAvg, on the same data sizes.
#
# Fashion-MNIST's training set is split IID (numpy seed 0) into one file pair per node, the test
# set into one quarter per node; the initial model comes from PyTorch (torch.manual_seed(0)). The
# run's aggregated metrics, the final model's accuracy in PyTorch and in FedSwift, each node's
# time per train message and each node's peak memory (process tree, benchmarks/treemon.py) go to
# OUT (default benchmarks/results/<date>-flower-mixed).
#
#   bash benchmarks/flower_mixed.sh [ROUNDS=5] [PER_NODE=6000] [FEDSWIFT_NODES=2] [PYTHON_NODES=2]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ROUNDS=${ROUNDS:-5}
PER_NODE=${PER_NODE:-6000}
NF=${FEDSWIFT_NODES:-2}
NP=${PYTHON_NODES:-2}
N=$((NF + NP))
OUT=${OUT:-benchmarks/results/$(date +%F)-flower-mixed}
PY=$(bash benchmarks/setup-baseline.sh)
VENV=$(dirname "$(dirname "$PY")")
"$PY" -c 'import safetensors' 2> /dev/null || "$VENV/bin/pip" install -q safetensors
export PATH="$VENV/bin:$PATH"
FEDSWIFT=${FEDSWIFT:-$ROOT/.build/release/fedswift}
[ -x "$FEDSWIFT" ] || swift build -c release --product fedswift
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fedswift-mixed.XXXXXX")
export FLWR_HOME="$WORK/flwr-home"
mkdir -p "$FLWR_HOME"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
  wait 2> /dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== data: $N nodes x $PER_NODE training images, test quarters; initial model from PyTorch"
"$PY" - "$WORK" "$N" "$PER_NODE" << 'EOF'
import gzip, os, struct, sys
import numpy as np
import torch
from safetensors.torch import save_file
sys.path.insert(0, "flower")
from fedswift_app.client_app import CNN, read_idx

work, n, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
src = os.environ.get("FEDSWIFT_FMNIST_DIR", "/usr/share/datasets/fashion-mnist")
def idx(path, array):
    with open(path, "wb") as f:
        f.write(struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape))
        f.write(array.astype(np.uint8).tobytes())
x, y = read_idx(f"{src}/train-images-idx3-ubyte.gz"), read_idx(f"{src}/train-labels-idx1-ubyte.gz")
tx, ty = read_idx(f"{src}/t10k-images-idx3-ubyte.gz"), read_idx(f"{src}/t10k-labels-idx1-ubyte.gz")
order = np.random.default_rng(0).permutation(len(y))
quarter = len(ty) // n
for i in range(n):
    part = order[i * per:(i + 1) * per]
    idx(f"{work}/train-{i}-images", x[part]); idx(f"{work}/train-{i}-labels", y[part])
    idx(f"{work}/test-{i}-images", tx[i * quarter:(i + 1) * quarter])
    idx(f"{work}/test-{i}-labels", ty[i * quarter:(i + 1) * quarter])
torch.manual_seed(0)
save_file({k: v.contiguous() for k, v in CNN().state_dict().items()}, f"{work}/init.safetensors")
EOF

PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$FLWR_HOME/config.toml" << EOF
[superlink]
default = "mixed"

[superlink.mixed]
address = "127.0.0.1:$PORT"
insecure = true
EOF
flower-superlink --insecure --port "$PORT" --disable-runtime-dependency-installation > "$OUT/superlink.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do (exec 3<> "/dev/tcp/127.0.0.1/$PORT") 2> /dev/null && break; sleep 0.2; done

echo "== $NF FedSwift nodes, $NP Python SuperNodes"
for i in $(seq 0 $((NF - 1))); do
  "$PY" benchmarks/treemon.py "$OUT/memory-fedswift-$i.json" -- "$FEDSWIFT" flower-node \
    --superlink "127.0.0.1:$PORT" --insecure --images "$WORK/train-$i-images" --labels "$WORK/train-$i-labels" \
    --test-shard "$i/$N" --heartbeat 30 --poll 0.5 > "$OUT/fedswift-node-$i.log" 2>&1 &
  pids+=($!)
done
for j in $(seq 0 $((NP - 1))); do
  i=$((NF + j))
  "$PY" benchmarks/treemon.py "$OUT/memory-python-$j.json" -- flower-supernode --insecure \
    --superlink "127.0.0.1:$PORT" --port $((PORT + 1 + j)) --node-config \
    "images='$WORK/train-$i-images' labels='$WORK/train-$i-labels' test-images='$WORK/test-$i-images' test-labels='$WORK/test-$i-labels' timing-file='$OUT/python-node-$j.jsonl'" \
    > "$OUT/python-node-$j.log" 2>&1 &
  pids+=($!)
done

echo "== flwr run: FedAvg, $ROUNDS rounds"
flwr run flower mixed --format json --run-config \
  "initial-model='$WORK/init.safetensors' final-model='$OUT/final.safetensors' result-file='$OUT/result.json' num-server-rounds=$ROUNDS min-nodes=$N lr=0.05" \
  > "$OUT/submit.json"
run=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["run-id"])' "$OUT/submit.json")
for _ in $(seq 1 3600); do
  status=$(flwr ls mixed --run-id "$run" --format json 2> /dev/null | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["status"])' || echo unknown)
  case "$status" in finished:*) break ;; esac
  sleep 1
done
flwr ls mixed --run-id "$run" --format json > "$OUT/run.json" 2> /dev/null || true
flwr log "$run" mixed > "$OUT/serverapp.log" 2>&1 || true
echo "run $run: $status"
[ "$status" = "finished:completed" ] || { tail -30 "$OUT/serverapp.log"; exit 1; }

# Stop the nodes with SIGTERM (the node processes themselves, not their treemon, which then writes
# their peak memory).
pkill -TERM -f "^$FEDSWIFT flower-node --superlink 127.0.0.1:$PORT" || true
pkill -TERM -f "^[^ ]*python[^ ]* [^ ]*flower-supernode --insecure --superlink 127.0.0.1:$PORT" || true
for _ in $(seq 1 60); do
  [ "$(ls "$OUT"/memory-*.json 2> /dev/null | wc -l)" -ge "$N" ] && break
  sleep 1
done

echo "== the final model in PyTorch and in FedSwift"
"$FEDSWIFT" eval --model cnn --weights "$OUT/final.safetensors" | tee "$OUT/fedswift-eval.txt"
"$PY" - "$OUT" << 'EOF' | tee "$OUT/summary.txt"
import glob, json, os, re, statistics, sys
import torch
from safetensors.torch import load_file
sys.path.insert(0, "flower")
from fedswift_app.client_app import CNN, read_idx

out = sys.argv[1]
src = os.environ.get("FEDSWIFT_FMNIST_DIR", "/usr/share/datasets/fashion-mnist")
model = CNN()
model.load_state_dict(load_file(f"{out}/final.safetensors"), strict=True)
model.eval()
x = torch.from_numpy(read_idx(f"{src}/t10k-images-idx3-ubyte.gz").astype("float32") / 255.0).unsqueeze(1)
y = torch.from_numpy(read_idx(f"{src}/t10k-labels-idx1-ubyte.gz").astype("int64"))
with torch.no_grad():
    correct = sum((model(x[i:i + 500]).argmax(1) == y[i:i + 500]).sum().item() for i in range(0, len(y), 500))
swift = float(open(f"{out}/fedswift-eval.txt").read().split()[2])
result = json.load(open(f"{out}/result.json"))
print("rounds (aggregated over all nodes):")
for r in result["rounds"]:
    print(f"  round {r['round']}: eval_acc {r['evaluate']['eval_acc']:.4f}  eval_loss {r['evaluate']['eval_loss']:.4f}"
          f"  train_loss {r['train']['train_loss']:.4f}")
print(f"final model: PyTorch accuracy {correct / len(y):.4f}, FedSwift {swift:.4f}")

def fedswift_times(path):
    rows = [l for l in open(path) if "replied" in l and "type=train" in l]
    return ([float(re.search(r"seconds=([0-9.]+)", l).group(1)) for l in rows],
            [float(re.search(r"total=([0-9.]+)", l).group(1)) for l in rows])

def python_times(path):
    rows = [json.loads(l) for l in open(path)] if os.path.exists(path) else []
    rows = [r for r in rows if r["type"] == "train"]
    return [r["train_s"] for r in rows], [r["process_s"] for r in rows]

print("per train message, median over nodes and rounds (s):")
fs = [fedswift_times(p) for p in sorted(glob.glob(f"{out}/fedswift-node-*.log"))]
py = [python_times(p) for p in sorted(glob.glob(f"{out}/python-node-*.jsonl"))]
def med(lists): return statistics.median([v for l in lists for v in l]) if any(lists) else float("nan")
print(f"  FedSwift node: training {med([a for a, _ in fs]):.3f}, message received to reply pushed {med([b for _, b in fs]):.3f}")
print(f"  Python SuperNode: training {med([a for a, _ in py]):.3f}, ClientApp process start to reply {med([b for _, b in py]):.3f}")
print("peak memory of each node's process tree (MiB, RSS sum / PSS sum):")
for p in sorted(glob.glob(f"{out}/memory-*.json")):
    m = json.load(open(p))
    print(f"  {os.path.basename(p)[7:-5]}: {m['peak_sum_rss_mib']:.0f} / {m['peak_sum_pss_mib']:.0f} "
          f"({m['peak_processes']} processes at most)")
print("InconsistentMessageReplies in the ServerApp log:",
      "yes" if "InconsistentMessageReplies" in open(f"{out}/serverapp.log").read() else "no")
EOF
lscpu | grep 'Model name' > "$OUT/cpu.txt"
# The records name paths of this machine (the repository, the temporary work directory, the
# baseline's virtualenv): make them repository-relative, WORK and VENV, so the committed results
# refer to nothing outside the repository.
for f in "$OUT"/*.json "$OUT"/*.jsonl "$OUT"/*.log "$OUT"/*.txt; do
  [ -f "$f" ] && sed -i -e "s|$ROOT/||g" -e "s|$WORK|WORK|g" -e "s|$VENV|VENV|g" "$f"
done
echo "results in $OUT"
