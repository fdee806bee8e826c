#!/usr/bin/env bash
# Installs every Debian 12 package kvevents needs to build, test, fuzz and benchmark.
# Idempotent: does nothing when all are present.
set -euo pipefail

packages=(
    cmake ninja-build pkg-config g++ clang clang-format clang-tidy libclang-rt-14-dev gcovr
    dpkg-dev  # dpkg-shlibdeps, for cpack -G DEB
    libzmq3-dev cppzmq-dev libmsgpack-cxx-dev libspdlog-dev libcli11-dev
    libgtest-dev libgmock-dev libbenchmark-dev
    prometheus-cpp-dev libssl-dev libxxhash-dev
    python3 python3-cbor2 python3-xxhash  # to make the block-hash test vectors again
    python3-zmq python3-msgpack  # the Python subscriber example, against kvevents-mock-publisher
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
    sudo_cmd=(sudo)
fi
echo "installing: ${missing[*]}"
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
