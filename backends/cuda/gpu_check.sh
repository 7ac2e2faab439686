#!/usr/bin/env bash
# The step functions run through `bash -c` under timeout (exported), not directly:
# shellcheck disable=SC2317
# gpu_check.sh: build and run everything CUDA on a GPU machine that has the CUDA toolkit,
# CMake, ninja and a C++ compiler, but no apt and no network.
#
# The project's other dependencies come as Debian packages in <repo>/.debs (filled on a
# machine with apt by backends/cuda/fetch_debs.sh and carried with the tree). They are
# unpacked with `dpkg -x` (or `ar` + `tar` where dpkg is missing) into .debs/root, which the
# configure step searches first (CMAKE_PREFIX_PATH) and the run steps put on
# LD_LIBRARY_PATH. Only what the CUDA checks need is built, for sm_90 (CUDA_ARCH to change).
#
# Steps (each logged to $OUT/<step>.txt; rc per step in $OUT/summary.txt):
#   unpack, configure, build            the plugin, hal_cuda_test, hal_cts_device_test,
#                                       hal_cuda_benchmark
#   build_halctl                        halctl (optional: the CTS falls back to
#                                       hal_cts_device_test without it)
#   gpu                                 nvidia-smi and `halctl list`: is cuda:0 there?
#   cuda_tests                          hal_cuda_test (GoogleTest XML too)
#   halctl                              halctl plugins / list / info cuda:0 (text and JSON)
#   cts                                 halctl cts --device cuda:0
#   benchmarks                          hal_cuda_benchmark (JSON in cuda_benchmark.json)
# The CPU backend is not configured there (Debian's OpenBLAS CMake config is reached
# through an alternatives link that dpkg -x does not create, and names /usr paths); the
# CUDA checks do not need it.
# Without a GPU the build steps and the CUDA tests still run (they skip, saying why); the
# GPU steps are skipped and the script exits 3.
#
# Environment: OUT (default ./gpu_out), DEBS (default <repo>/.debs), BUILD (default
# <repo>/build-gpu), JOBS (default nproc), CUDA_ARCH (default 90), CUDA_HOME (default
# /usr/local/cuda), SKIP_BENCH=1 to skip the benchmarks, BENCH_FILTER (a
# --benchmark_filter regex).
# Exit: 0 all passed; 1 a step failed (see summary.txt); 3 no GPU (GPU steps skipped).
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${OUT:-$PWD/gpu_out}
DEBS=${DEBS:-$repo/.debs}
BUILD=${BUILD:-$repo/build-gpu}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 4)}
CUDA_ARCH=${CUDA_ARCH:-90}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
root=$DEBS/root
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
summary=$OUT/summary.txt
: >"$summary"
failed=0

say() { echo "== $*" | tee -a "$OUT/gpu_check.log"; }
# step NAME TIMEOUT_S CMD...: runs CMD with output in $OUT/NAME.txt, records its rc.
step() {
  local name=$1 limit=$2
  shift 2
  say "$name: $*"
  local start=$SECONDS
  # Through bash so that the exported functions below run under timeout too.
  timeout --kill-after=10 "$limit" bash -c '"$@"' bash "$@" >"$OUT/$name.txt" 2>&1
  local rc=$?
  tail -n 15 "$OUT/$name.txt" | sed 's/^/   /' | tee -a "$OUT/gpu_check.log"
  echo "$name rc=$rc ($((SECONDS - start)) s)" | tee -a "$summary" "$OUT/gpu_check.log" >/dev/null
  say "$name: rc=$rc in $((SECONDS - start)) s"
  ((rc == 0)) || failed=1
  return $rc
}

# ---- unpack ----------------------------------------------------------------------------
unpack() {
  shopt -s nullglob
  local debs=("$DEBS"/*.deb)
  if ((${#debs[@]} == 0)); then
    echo "no .deb files in $DEBS: run backends/cuda/fetch_debs.sh on a machine with apt" \
      "and carry .debs with the tree (or install the -dev packages)"
    return 1
  fi
  mkdir -p "$root"
  local d
  for d in "${debs[@]}"; do
    local stamp
    stamp=$root/.unpacked.$(basename "$d")
    [[ -e $stamp && $stamp -nt $d ]] && continue
    if command -v dpkg >/dev/null; then
      dpkg -x "$d" "$root" || return 1
    else
      # A .deb is an ar archive holding data.tar.{xz,zst,gz}.
      local tmp
      tmp=$(mktemp -d)
      (cd "$tmp" && ar x "$d") || return 1
      tar -xf "$tmp"/data.tar.* -C "$root" || return 1
      rm -rf "$tmp"
    fi
    touch "$stamp"
    echo "unpacked $(basename "$d")"
  done
  echo "prefix: $root/usr"
}
export DEBS root
export -f unpack
step unpack 300 unpack || { say "cannot continue without the dependencies"; exit 1; }

libdir=$root/usr/lib/x86_64-linux-gnu
export LD_LIBRARY_PATH=$libdir:$root/usr/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export HAL_PLUGIN_PATH=  # only the build tree's plugins

# ---- configure and build -----------------------------------------------------------------
nvcc=$CUDA_HOME/bin/nvcc
[[ -x $nvcc ]] || nvcc=$(command -v nvcc || true)
configure() {
  if [[ -z $nvcc ]]; then
    echo "no nvcc in $CUDA_HOME/bin or on PATH: set CUDA_HOME"
    return 1
  fi
  local launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
  cmake -S "$repo" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCH" \
    -DCMAKE_PREFIX_PATH="$root/usr" -DCMAKE_LIBRARY_ARCHITECTURE=x86_64-linux-gnu \
    -DCMAKE_LIBRARY_PATH="$libdir" \
    "${launcher[@]}" || return 1
  # The plugin must be there: a configure that skipped CUDA is a failure here.
  # (The target list is read whole: `grep -q` would close the pipe early, and pipefail
  # would turn ninja's SIGPIPE into a failure.)
  local all
  all=$(ninja -C "$BUILD" -t targets all) || return 1
  if ! grep -q '^hal_plugin_cuda:' <<<"$all"; then
    echo "the CUDA backend was not configured (see the CUDA lines above)"
    return 1
  fi
  grep -E '^(GTest|benchmark|fmt|nlohmann_json|Boost|TBB)_DIR' "$BUILD/CMakeCache.txt"
}
export repo BUILD CUDA_ARCH nvcc libdir
export -f configure
step configure 600 configure || { say "configure failed"; exit 1; }

# What the CUDA checks need, then halctl on its own: halctl pulls in the runtime, and a
# runtime that does not build (work in progress elsewhere in the tree) must not cost the
# CUDA results; without halctl the CTS runs through hal_cts_device_test instead.
step build 1800 ninja -C "$BUILD" -j "$JOBS" hal_plugin_cuda hal_cuda_test hal_cts_device_test \
  hal_cuda_benchmark || { say "build failed"; exit 1; }
all_targets=$(ninja -C "$BUILD" -t targets all)
bin=$BUILD/bin
if grep -q '^halctl:' <<<"$all_targets"; then
  step build_halctl 1200 ninja -C "$BUILD" -j "$JOBS" halctl || rm -f "$bin/halctl"
fi

# ---- is there a GPU? ----------------------------------------------------------------------
gpu_present() {
  command -v nvidia-smi >/dev/null && nvidia-smi -L
  if [[ -x $bin/halctl ]]; then
    "$bin/halctl" plugins
    "$bin/halctl" list --ids | grep -qx 'cuda:0'
  else
    "$bin/hal_cuda_test" --gtest_filter='CudaDevice.DescribesTheGpu' | grep -q '\[       OK \]'
  fi
}
export bin
export -f gpu_present
step gpu 120 gpu_present
have_gpu=$?

# The CUDA tests run either way: without a GPU they skip, naming the runtime's answer.
step cuda_tests 900 "$bin/hal_cuda_test" --gtest_output="xml:$OUT/hal_cuda_test.xml"

if ((have_gpu != 0)); then
  say "no GPU visible (see gpu.txt): halctl info, the CTS and the benchmarks were skipped"
  echo "gpu_steps skipped: no GPU" >>"$summary"
  exit 3
fi

if [[ -x $bin/halctl ]]; then
  halctl_all() {
    "$bin/halctl" list && "$bin/halctl" list --json >"$OUT/list.json" &&
      "$bin/halctl" info cuda:0 && "$bin/halctl" info cuda:0 --json >"$OUT/info_cuda0.json"
  }
  export OUT
  export -f halctl_all
  step halctl 120 halctl_all
  step cts 900 "$bin/halctl" cts --device cuda:0
else
  say "no halctl (not configured, or its build failed: see build_halctl.txt): the CTS runs" \
    "through hal_cts_device_test"
  step cts 900 "$bin/hal_cts_device_test" --gtest_filter='Cts_cuda_0.*'
fi

if [[ ${SKIP_BENCH:-0} != 1 ]]; then
  step benchmarks 1200 "$bin/hal_cuda_benchmark" --benchmark_format=console \
    --benchmark_out="$OUT/cuda_benchmark.json" --benchmark_out_format=json \
    ${BENCH_FILTER:+--benchmark_filter="$BENCH_FILTER"}
fi

say "summary:"
tee -a "$OUT/gpu_check.log" <"$summary"
exit $failed
