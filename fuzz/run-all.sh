#!/usr/bin/env bash
# Builds every fuzz target (fuzz/build.sh, cargo-fuzz's flags) and runs each
# for SECONDS (default 10: the CI smoke run),
# JOBS at a time (default 1), from the seeded corpora (fuzz/seed.sh).
# Each target first replays its committed crashers (fuzz/regressions/TARGET/).
# Logs go to fuzz/logs/TARGET.log; a crash, timeout or OOM fails the run
# and leaves its input in fuzz/artifacts/TARGET/.
# Usage: fuzz/run-all.sh [SECONDS] [JOBS] [TARGET...]
set -uo pipefail
cd "$(dirname "$0")"
SECS=${1:-10}; JOBS=${2:-1}; shift $(( $# > 2 ? 2 : $# ))
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(model_load localize decode pnp colmap_bin colmap_txt indoor6_text split_pickle depth_map c_abi pth_import)
mkdir -p logs
./build.sh >/dev/null || exit 1
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_odr_violation=0"
run() {
  t=$1
  mkdir -p corpus/$t
  # First the committed crashers of this target (each must now pass).
  if compgen -G "regressions/$t/*" >/dev/null; then
    target/x86_64-unknown-linux-gnu/release/$t -timeout=10 regressions/$t/* > logs/$t.regressions.log 2>&1 \
      || { echo "$t: a committed regression input fails again (logs/$t.regressions.log)"; return 1; }
  fi
  mkdir -p artifacts/$t
  target/x86_64-unknown-linux-gnu/release/$t -artifact_prefix=artifacts/$t/ corpus/$t -max_total_time="$SECS" \
    -timeout=10 -rss_limit_mb=2560 -max_len=262144 -print_final_stats=1 > logs/$t.log 2>&1
  rc=$?
  line=$(grep -E "^#[0-9]+.*(DONE|pulse|NEW|REDUCE)" logs/$t.log | tail -1)
  execs=$(grep -m1 "stat::number_of_executed_units" logs/$t.log | awk '{print $2}')
  echo "$t rc=$rc execs=${execs:-?} ${line}"
  return $rc
}
fail=0
pids=()
for t in "${TARGETS[@]}"; do
  run "$t" & pids+=($!)
  if [ ${#pids[@]} -ge "$JOBS" ]; then wait "${pids[0]}" || fail=1; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p" || fail=1; done
exit $fail
