#!/usr/bin/env bash
# Installs what DEngine needs to build and test on Debian 12. Idempotent: when everything is
# present it only checks (no network). Run as root, or as a user with sudo.
#   --bench   also what the side-by-side comparison with etcd needs (bench/vs-etcd.sh)
set -euo pipefail

packages=(
    build-essential cmake ninja-build git # toolchain
    libgtest-dev                          # tests
    libprotobuf-dev protobuf-compiler     # the wire format between nodes (src/transport)
    qt6-base-dev                          # the engine's Qt layer (src/engine, tests/auto)
    qt6-declarative-dev qt6-declarative-dev-tools # the QML module (qml/), the dashboard, Qt Quick Test
    qml6-module-qtquick qml6-module-qtquick-controls qml6-module-qtquick-layouts qml6-module-qtquick-window
    qml6-module-qtquick-templates qml6-module-qtquick-shapes qml6-module-qtqml qml6-module-qtqml-models
    qml6-module-qtqml-workerscript qml6-module-qttest
    libssl-dev                            # certificates (src/certs, dengine-ctl certs)
    clang libclang-rt-14-dev              # libFuzzer target (tests/storage/fuzz_wal_reader)
    iproute2 nftables                     # the fault harness's namespaces and partitions (tests/chaos)
    faketime                              # the fault harness's clock jumps (libfaketime)
    libtcmalloc-minimal4                  # the allocator dengined and dengine link (cmake/DEngineAllocator.cmake)
)
if [ "${1:-}" = "--bench" ]; then
    packages+=(etcd-server etcd-client wrk python3 curl) # ../shared/bench/etcd-baseline.sh
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup-debian.sh: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo=sudo
fi
echo "setup-debian.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
