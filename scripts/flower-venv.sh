#!/usr/bin/env bash
# Installs Flower 1.41.0 (no PyTorch) with numpy and safetensors into .venv-flower, the
# virtualenv the Flower integration test (scripts/test_flower.sh) and the Flower app in flower/
# run in; protoc (Debian's protobuf-compiler) for the check of FedFlower's .proto against Flower's.
# Idempotent; prints the venv's python.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${FEDSWIFT_FLOWER_VENV:-$PWD/.venv-flower}"
if ! command -v protoc > /dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler > /dev/null 2>&1 \
    || { $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler > /dev/null; }
fi
if ! "$VENV/bin/python" -c 'import flwr, numpy, safetensors; assert flwr.__version__ == "1.41.0"' 2> /dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "flwr==1.41.0" numpy safetensors
fi
echo "$VENV/bin/python"
