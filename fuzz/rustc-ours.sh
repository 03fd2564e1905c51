#!/usr/bin/env bash
# RUSTC_WRAPPER for `FUZZ_INSTRUMENT=ours fuzz/build.sh` (the CI smoke run):
# the crates of this repository (sld-core, sld-train, sld-ffi, the fuzz
# targets) get AddressSanitizer and libFuzzer's coverage instrumentation;
# third-party crates (Candle, image, ...) build as plain optimised code
# with line tables only. ASan still checks every heap block those crates
# allocate when our code touches it; what is lost is coverage feedback and
# bounds checks inside them, which a 10-second smoke run does not use.
# A full campaign builds with FUZZ_INSTRUMENT=all (the default).
# Called as: rustc-ours.sh RUSTC ARGS...
set -euo pipefail
rustc=$1; shift
repo=$(cd "$(dirname "$0")/.." && pwd)
# Ours: a source file of this repository (the fuzz crate's own are given
# relative to fuzz/), built for the fuzz target (build scripts and proc
# macros, built for the host, carry no --target and stay plain).
ours=0; target=0
for a in "$@"; do
  case "$a" in
    "$repo"/*.rs | src/*.rs | fuzz_targets/*.rs) ours=1 ;;
    --target) target=1 ;;
  esac
done
if [ "$ours" = 1 ] && [ "$target" = 1 ]; then
  # Instrumented crates link against uninstrumented ones: say so to the
  # target-modifier check (the sanitizer changes no ABI that Rust code
  # crossing crates relies on).
  exec "$rustc" "$@" $FUZZ_OURS_FLAGS -Cunsafe-allow-abi-mismatch=sanitizer
fi
# FUZZ_DEPS_OPT_LEVEL (the CI smoke build sets 0): the optimisation of
# the third-party crates, whose speed a 10-second run does not need.
args=()
for a in "$@"; do
  case "$a" in
    debuginfo=2) args+=("debuginfo=line-tables-only") ;;
    opt-level=*) args+=("opt-level=${FUZZ_DEPS_OPT_LEVEL:-${a#opt-level=}}") ;;
    *) args+=("$a") ;;
  esac
done
exec "$rustc" "${args[@]}"
