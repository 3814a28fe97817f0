#!/usr/bin/env bash
# Installs what FedSwift needs from Debian, idempotently: OpenBLAS, oneDNN (x86-64 only; elsewhere
# the engine runs on OpenBLAS), pkg-config, zlib, the Fashion-MNIST dataset and openssl (the TLS
# tests make their certificates with it). Runs
# `apt-get update` only when a package cannot be found otherwise.
set -euo pipefail
pkgs=(libopenblas-dev pkg-config zlib1g-dev dataset-fashion-mnist openssl)
[ "$(uname -m)" = x86_64 ] && pkgs+=(libdnnl-dev)
need=()
for pkg in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing: ${need[*]}" >&2
if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
