#!/bin/sh
# Builds consumer.cpp as C++17 with one compiler command whose flags come from pkg-config, then
# runs it: the way a Makefile or another build system uses an installed kvevents.
# Usage: build_with_pkg_config.sh <C++ compiler> <output directory>
# PKG_CONFIG_PATH must lead to kvevents.pc unless it is installed under /usr or /usr/local.
set -eu
cxx=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)

modules="kvevents-testing kvevents-routing kvevents"
defines=""
if pkg-config --exists kvevents-prometheus; then
    modules="kvevents-prometheus $modules"
    defines="-DKVEVENTS_CONSUMER_PROMETHEUS"
fi
echo "kvevents $(pkg-config --modversion kvevents) from $(pkg-config --variable=prefix kvevents)"
mkdir -p "$out"
# The library is a static archive: --static adds the libraries it links (Libs.private).
# shellcheck disable=SC2046,SC2086  # the flags are meant to be split into words
"$cxx" -std=c++17 $defines $(pkg-config --cflags $modules) "$here/consumer.cpp" \
    -o "$out/consumer" $(pkg-config --static --libs $modules)
"$out/consumer"
