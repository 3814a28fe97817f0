#!/usr/bin/env bash
# The Flower integration test (`make test` runs it): FedSwift nodes in a stock Flower federation.
#
# 1. FedFlower's .proto against the installed flwr's descriptors.
# 2. A real `flower-superlink --insecure` on loopback; two `fedswift flower-node`s on Fashion-MNIST
#    (each 1/10 of the training set, half of the test set); the Flower app in flower/ submitted
#    with `flwr run`: flwr.serverapp.strategy.FedAvg for 3 rounds on the FedAvg CNN. The federated
#    test accuracy must rise round over round, and the final arrays, loaded into FedSwift, must
#    give the last round's accuracy on the whole test set.
# 3. The SuperLink is killed and started again (empty state): the nodes register and activate
#    again by themselves and answer a second run.
# 4. A SuperLink with --enable-supernode-auth over TLS: a node whose key `flwr supernode register`
#    registered activates and answers a run; an unregistered key is refused with a clear error;
#    requests with a wrong signature or a stale timestamp are refused (HTTP 401).
#
#   bash scripts/test_flower.sh            (KEEP=1 keeps the work directory and logs)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=$(bash scripts/flower-venv.sh)
VENV=$(dirname "$(dirname "$PY")")
export PATH="$VENV/bin:$PATH"
FEDSWIFT=${FEDSWIFT:-$ROOT/.build/release/fedswift}
[ -x "$FEDSWIFT" ] || { echo "build fedswift first (swift build -c release)" >&2; exit 2; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fedswift-flower.XXXXXX")
export FLWR_HOME="$WORK/flwr-home"
mkdir -p "$FLWR_HOME"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
  wait 2> /dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for f in "$WORK"/*.log; do echo "--- $f" >&2; tail -n 30 "$f" >&2; done
  exit 1
}
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {  # port seconds
  for _ in $(seq 1 $(($2 * 5))); do
    (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null && return 0
    sleep 0.2
  done
  return 1
}
wait_for() {  # file-or-pattern-command seconds what
  for _ in $(seq 1 "$2"); do
    if eval "$1"; then return 0; fi
    sleep 1
  done
  fail "timed out after $2 s waiting for $3"
}
start_superlink() {  # name port [args...]
  local name=$1 port=$2
  shift 2
  flower-superlink --port "$port" --disable-runtime-dependency-installation "$@" > "$WORK/$name.log" 2>&1 &
  superlink_pid=$!
  pids+=("$superlink_pid")
  wait_port "$port" 60 || fail "$name did not listen on $port"
}
start_node() {  # name args...
  local name=$1
  shift
  "$FEDSWIFT" flower-node --partition-scheme iid --seed 0 --heartbeat 10 --poll 0.5 --log-level info "$@" \
    > "$WORK/$name.log" 2>&1 &
  pids+=($!)
  echo $! > "$WORK/$name.pid"
}
submit() {  # connection name rounds: runs the Flower app and waits for it to finish
  "$VENV/bin/flwr" run flower "$1" --format json --run-config \
    "initial-model='$WORK/init.safetensors' final-model='$WORK/$2.safetensors' result-file='$WORK/$2.json' num-server-rounds=$3 lr=0.05" \
    > "$WORK/$2-submit.log" 2>&1 || fail "flwr run $2 failed"
  local run status
  run=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["run-id"])' "$WORK/$2-submit.log")
  for _ in $(seq 1 600); do
    status=$("$VENV/bin/flwr" ls "$1" --run-id "$run" --format json 2> /dev/null \
      | "$PY" -c 'import json,sys; r=json.load(sys.stdin)["runs"][0]; print(r["status"], r.get("status-details", ""))' \
      || echo "unknown")
    case "$status" in
      finished:completed*) return 0 ;;
      finished:*)
        "$VENV/bin/flwr" log "$run" "$1" > "$WORK/$2-serverapp.log" 2>&1 || true
        fail "run $2 ended $status" ;;
    esac
    sleep 1
  done
  fail "run $2 did not finish in 600 s ($status)"
}

echo "== FedFlower's protos against flwr's"
"$PY" scripts/check_flower_protos.py

echo "== FedAvg over a stock SuperLink, 2 FedSwift nodes, 3 rounds"
"$FEDSWIFT" init-model --model cnn --seed 0 --out "$WORK/init.safetensors" > /dev/null
PORT=$(free_port)
cat > "$FLWR_HOME/config.toml" << EOF
[superlink]
default = "local"

[superlink.local]
address = "127.0.0.1:$PORT"
insecure = true
EOF
start_superlink superlink "$PORT" --insecure
for i in 0 1; do
  start_node "node$i" --superlink "127.0.0.1:$PORT" --insecure --partition "$i/10" --test-shard "$i/2"
done
submit local run1 3
"$PY" - "$WORK/run1.json" << 'EOF' || fail "run 1 results"
import json, sys
r = json.load(open(sys.argv[1]))
acc = [x["evaluate"]["eval_acc"] for x in r["rounds"]]
print("federated test accuracy by round:", [round(a, 4) for a in acc], f"({r['seconds']:.1f} s)")
assert len(acc) == 3, acc
assert all(b > a for a, b in zip(acc, acc[1:])), f"accuracy does not rise round over round: {acc}"
assert acc[-1] > 0.7, acc
assert all(x["train"]["train_loss"] > 0 for x in r["rounds"])
assert r["arrays"]["conv1.weight"] == ["float32", [32, 1, 5, 5]], r["arrays"]
EOF
last=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['rounds'][-1]['evaluate']['eval_acc'])" "$WORK/run1.json")
line=$("$FEDSWIFT" eval --model cnn --weights "$WORK/run1.safetensors")
echo "FedSwift on the final arrays: $line (last round, federated: $last)"
"$PY" -c "
import sys
swift = float(sys.argv[1].split()[2]); flower = float(sys.argv[2])
assert abs(swift - flower) < 1e-4, (swift, flower)" "$line" "$last" || fail "the final model's accuracy differs"

echo "== the SuperLink restarts: the nodes come back by themselves"
kill "$superlink_pid"
wait "$superlink_pid" 2> /dev/null || true
start_superlink superlink-restarted "$PORT" --insecure
submit local run2 1
for i in 0 1; do
  [ "$(grep -c 'activated' "$WORK/node$i.log")" -ge 2 ] || fail "node $i did not activate again"
done

echo "== --enable-supernode-auth over TLS: a registered key, an unregistered one, forged requests"
kill "$superlink_pid"
wait "$superlink_pid" 2> /dev/null || true
for i in 0 1; do kill "$(cat "$WORK/node$i.pid")" 2> /dev/null || true; done
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$WORK/tls.key" -out "$WORK/tls.pem" 2> /dev/null
AUTH_PORT=$(free_port)
cat > "$FLWR_HOME/config.toml" << EOF
[superlink]
default = "auth"

[superlink.auth]
address = "127.0.0.1:$AUTH_PORT"
root-certificates = "$WORK/tls.pem"
EOF
start_superlink superlink-auth "$AUTH_PORT" --enable-supernode-auth --ssl-certfile "$WORK/tls.pem" \
  --ssl-keyfile "$WORK/tls.key" --ssl-ca-certfile "$WORK/tls.pem"
for i in 0 1 probe; do
  "$FEDSWIFT" flower-key "$WORK/key$i.pem" > /dev/null
  "$VENV/bin/flwr" supernode register "$WORK/key$i.pem.pub" auth > "$WORK/register-$i.log" 2>&1 \
    || fail "flwr supernode register key $i"
done
for i in 0 1; do
  start_node "auth-node$i" --superlink "127.0.0.1:$AUTH_PORT" --root-certificates "$WORK/tls.pem" \
    --key "$WORK/key$i.pem" --partition "$i/10" --test-shard "$i/2"
done
"$FEDSWIFT" flower-key "$WORK/stranger.pem" > /dev/null
if "$FEDSWIFT" flower-node --superlink "127.0.0.1:$AUTH_PORT" --root-certificates "$WORK/tls.pem" \
  --key "$WORK/stranger.pem" --partition 2/10 --patience 3 > "$WORK/stranger.log" 2>&1; then
  fail "an unregistered key was let in"
fi
grep -q "flwr supernode register" "$WORK/stranger.log" || fail "the refusal does not say what to do"
"$PY" - "$AUTH_PORT" "$WORK/keyprobe.pem" "$WORK/tls.pem" << 'EOF' || fail "forged requests"
import base64, datetime, sys
import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flwr.proto.fleet_pb2 import ActivateNodeRequest, ActivateNodeResponse, DeactivateNodeRequest
from flwr.supercore.primitives.asymmetric import public_key_to_bytes

port, key_path, ca = sys.argv[1], sys.argv[2], sys.argv[3]
key = serialization.load_pem_private_key(open(key_path, "rb").read(), password=None)
public = public_key_to_bytes(key.public_key())
body = ActivateNodeRequest(public_key=public, heartbeat_interval=30).SerializeToString()

def post(timestamp, signed_text, rpc="activate-node", content=body):
    signature = key.sign(signed_text.encode(), ec.ECDSA(hashes.SHA256()))
    headers = {"content-type": "application/protobuf", "flwr-public-key": base64.b64encode(public).decode(),
               "flwr-timestamp": timestamp, "flwr-signature": base64.b64encode(signature).decode()}
    return httpx.post(f"https://127.0.0.1:{port}/v1/fleet/{rpc}", content=content, headers=headers, verify=ca)

now = datetime.datetime.now(tz=datetime.UTC)
stale = (now - datetime.timedelta(seconds=400)).isoformat()
fresh = now.isoformat()
valid = post(fresh, fresh)
codes = {"valid": valid.status_code, "wrong signature": post(fresh, fresh + "x").status_code,
         "stale timestamp": post(stale, stale).status_code}
print("activate-node answers:", codes)
assert codes == {"valid": 200, "wrong signature": 401, "stale timestamp": 401}, codes
# The probe's node goes offline again, so that FedAvg does not wait for it.
node = ActivateNodeResponse.FromString(valid.content).node_id
fresh = datetime.datetime.now(tz=datetime.UTC).isoformat()
assert post(fresh, fresh, "deactivate-node", DeactivateNodeRequest(node_id=node).SerializeToString()).status_code == 200
EOF
submit auth run3 1
echo "flower integration: OK"
