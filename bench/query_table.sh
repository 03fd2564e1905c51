#!/usr/bin/env bash
# Query-session recall over several rendered rooms (issue 15's evaluation
# set): each room is `sld synth --seed S --images 240 --sessions 3 --width
# 640 --height 352` (two mapping sessions, the third under other lighting
# and on another path is the test split) with LM landmarks chosen by the
# loose filters. One candidate recipe (the `sld train` arguments after the
# room list) is trained on every room; the query (test) and held-out mapping
# (val) recall of each room and their mean, min and max are printed and
# written to WORKDIR/NAME/summary.txt.
# Usage: [SEEDS="101 102 103 104 105"] [LM=300] bench/query_table.sh WORKDIR NAME -- TRAIN ARGS...
#   e.g. bench/query_table.sh /tmp/q small -- full --arch small --epochs 30
set -euo pipefail
cd "$(dirname "$0")/.."
W=$1; NAME=$2; shift 2; [ "${1:-}" = "--" ] && shift
SLD=${SLD:-target/release/sld}
SEEDS=${SEEDS:-101 102 103 104 105}
LM=${LM:-300}
mkdir -p "$W/$NAME"
out="$W/$NAME/summary.txt"
echo "recipe: sld train $* (landmarks $LM)" > "$out"
for s in $SEEDS; do
  r="$W/room$s"
  if [ ! -d "$r/images" ]; then
    $SLD synth --out "$r" --seed "$s" --images 240 --sessions 3 --width 640 --height 352 >/dev/null
  fi
  if [ ! -f "$r/landmarks/landmarks-$LM.txt" ]; then
    $SLD landmarks --scene "$r" --count "$LM" --min-track 10 --min-span 0.1 --radius 1 >/dev/null
  fi
  run="$W/$NAME/room$s"
  t0=$(date +%s.%N)
  $SLD train "$@" --scene "$r" --landmarks "$r/landmarks/landmarks-$LM.txt" --out "$run" > "$run.log" 2>&1
  t=$(python3 -c "import time,sys; print(f'{time.time() - float(sys.argv[1]):.0f}')" "$t0")
  $SLD eval --model "$run/model.sld" --scene "$r" --split test --json > "$run.test.json"
  $SLD eval --model "$run/model.sld" --scene "$r" --split val --json > "$run.val.json"
  python3 - "$run" "$s" "$t" >> "$out" <<'PY'
import json, sys
run, seed, t = sys.argv[1:]
q = json.load(open(run + ".test.json")); v = json.load(open(run + ".val.json"))
print(f"room {seed}: train {t} s | query 5cm {100*q['recall_5cm_5deg']:.1f} % 10cm {100*q['recall_10cm_10deg']:.1f} % "
      f"median {100*(q['median_position_m'] or float('nan')):.1f} cm, correct/det {q['median_correct']:.0f}/{q['median_detections']:.0f} px {q['median_pixel_error'] or float('nan'):.2f} | val 5cm {100*v['recall_5cm_5deg']:.1f} % 10cm {100*v['recall_10cm_10deg']:.1f} %")
PY
  tail -1 "$out"
done
python3 - "$W/$NAME" $SEEDS >> "$out" <<'PY'
import json, sys, statistics as st
d = sys.argv[1]; seeds = sys.argv[2:]
def col(split, key):
    return [100 * json.load(open(f"{d}/room{s}.{split}.json"))[key] for s in seeds]
for split, name in (("test", "query"), ("val", "val")):
    for key, k in (("recall_5cm_5deg", "5cm/5deg"), ("recall_10cm_10deg", "10cm/10deg")):
        v = col(split, key)
        print(f"{name} {k}: mean {st.mean(v):.1f} % (min {min(v):.1f}, max {max(v):.1f}, n {len(v)})")
PY
tail -4 "$out"
