#!/usr/bin/env bash
# Builds every fuzz target the way `cargo fuzz build` does (release,
# debug assertions and overflow checks on, AddressSanitizer, libFuzzer's
# SanitizerCoverage instrumentation, one codegen unit), without needing
# cargo-fuzz installed: CI saves its ~3-minute source build. The flags are
# cargo-fuzz 0.13's defaults (src/project.rs, `FuzzProject::cargo`).
# FUZZ_CODEGEN_UNITS (default 1, as cargo-fuzz) trades fuzzing speed for
# build time: the CI smoke run, 10 s a target, builds with 16.
# FUZZ_INSTRUMENT=ours (default all) instruments only this repository's
# crates, not Candle and the other dependencies (fuzz/rustc-ours.sh): the
# CI smoke run's build, about half the time. A campaign keeps the default,
# whose coverage inside the third-party parsers found two of their panics.
# FUZZ_NO_FORCED_INLINE=1 builds sld-core with `--cfg sld_no_forced_inline`:
# its kernels keep their own functions instead of being forced inline into
# one another. The same code runs, slower; the build is ~10x faster (the
# forced inlining made functions so large that instrumenting them took most
# of the build). The CI smoke build sets it; a campaign leaves it unset.
# FUZZ_DEPS_OPT_LEVEL=0 (with FUZZ_INSTRUMENT=ours) builds the third-party
# crates unoptimised: the CI smoke build, ~240 s of CPU less (fuzz/rustc-ours.sh).
# Binaries: fuzz/target/x86_64-unknown-linux-gnu/release/TARGET.
# Usage: fuzz/build.sh [cargo build args...]
set -euo pipefail
cd "$(dirname "$0")"
TRIPLE=x86_64-unknown-linux-gnu
# Newer compilers take the sanitizer as a -C flag (with -Zunstable-options
# on nightly); older nightlies only as -Z.
if rustc +nightly -C help 2>/dev/null | grep -q -- '-C *sanitizer'; then
  SAN="-Csanitizer=address -Zunstable-options"
else
  SAN="-Zsanitizer=address"
fi
INSTRUMENT="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-simplifycfg-branch-fold-threshold=0 \
$SAN -Cllvm-args=-sanitizer-coverage-stack-depth"
COMMON="--cfg fuzzing -Cdebug-assertions -Ccodegen-units=${FUZZ_CODEGEN_UNITS:-1}"
[ "${FUZZ_NO_FORCED_INLINE:-0}" = 1 ] && COMMON="$COMMON --cfg sld_no_forced_inline"
case "${FUZZ_INSTRUMENT:-all}" in
  all) export RUSTFLAGS="$INSTRUMENT $COMMON ${RUSTFLAGS:-}" ;;
  ours)
    # Only this repository's crates instrumented (fuzz/rustc-ours.sh).
    export RUSTFLAGS="$COMMON ${RUSTFLAGS:-}" FUZZ_OURS_FLAGS="$INSTRUMENT"
    export RUSTC_WRAPPER="$PWD/rustc-ours.sh" ;;
  *) echo "FUZZ_INSTRUMENT is all or ours, not '$FUZZ_INSTRUMENT'" >&2; exit 2 ;;
esac
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_odr_violation=0"
export CARGO_FUZZ=1 CARGO_FUZZ_MANIFEST_DIR="$PWD/Cargo.toml"
exec cargo +nightly build --manifest-path Cargo.toml --target "$TRIPLE" --release \
  --config 'profile.release.debug=true' --bins "$@"
