#!/usr/bin/env bash
# Fills <repo>/.debs with the Debian packages gpu_check.sh needs on a GPU machine that has
# the CUDA toolkit, CMake and ninja but neither apt nor a network: the -dev packages of the
# project's dependencies and the library packages they link against. Run it on a machine
# with apt (Debian 12 "bookworm", amd64, like the packages' target), then carry .debs with
# the tree. Only the named packages are downloaded: glibc, libstdc++ and the compiler
# stay the GPU machine's own.
#
# Usage: backends/cuda/fetch_debs.sh            (downloads into .debs/, keeps what is there)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
dest=${DEBS:-$repo/.debs}
mkdir -p "$dest"
cd "$dest"

packages=(
  # GoogleTest (GTestConfig also names the gmock targets, so both are needed)
  libgtest-dev libgmock-dev
  # Google Benchmark
  libbenchmark-dev libbenchmark1debian
  # fmt
  libfmt-dev libfmt9
  # Boost.Program_options (and the Boost headers it includes)
  libboost-program-options-dev libboost-program-options1.74-dev libboost-program-options1.74.0
  libboost1.74-dev
  # nlohmann-json (header-only)
  nlohmann-json3-dev
  # oneTBB and OpenBLAS (the CPU backend; configured, not built, by gpu_check.sh)
  libtbb-dev libtbb12 libtbbmalloc2 libtbbbind-2-5 libhwloc15
  libopenblas-dev libopenblas-pthread-dev libopenblas0 libopenblas0-pthread libgfortran5 libquadmath0
)
if ! command -v apt-get >/dev/null; then
  echo "fetch_debs.sh: apt-get not found: run this on a Debian/Ubuntu machine with apt" >&2
  exit 1
fi
missing=()
for p in "${packages[@]}"; do
  compgen -G "${p}_*.deb" >/dev/null || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "downloading ${#missing[@]} package(s) into $dest"
  apt-get download "${missing[@]}"
fi
ls -1 -- *.deb >MANIFEST
echo "$(wc -l <MANIFEST) packages in $dest ($(du -sh . | cut -f1))"
