#!/usr/bin/env bash
# Data for the reliability gate (sld-core `Gate`, EXPERIMENTS.md "The
# reliability gate"). For every model set NAME made by bench/query_table.sh
# (WORKDIR/NAME/roomS/model.sld, trained on WORKDIR/roomS), runs with the
# gate OFF and records the evidence (`quality`) behind each pose PnP finds:
#   - held-out mapping images (val) and the query session (test) of its room,
#     with their true errors;
#   - the query images of the *next* room (a room the model never saw: every
#     pose is wrong);
#   - 200 noise images (4 kinds x 50, 640x352, bench/gate_noise.py).
# Then bench/gate_table.py scores candidate gates on all of it.
# Usage: [SEEDS="101 102 103 104 105"] bench/gate_calibration.sh WORKDIR NAME...
set -euo pipefail
cd "$(dirname "$0")/.."
W=$1; shift
SLD=${SLD:-target/release/sld}
SEEDS=(${SEEDS:-101 102 103 104 105})
python3 -c "import numpy, PIL" 2>/dev/null || python3 -m pip install -q numpy pillow
noise="$W/gate/noise"
[ -f "$noise/done" ] || { python3 bench/gate_noise.py "$noise" 200 640 352 && touch "$noise/done"; }
for NAME in "$@"; do
  out="$W/gate/$NAME"; mkdir -p "$out"
  n=${#SEEDS[@]}
  for i in $(seq 0 $((n - 1))); do
    s=${SEEDS[$i]}; other=${SEEDS[$(((i + 1) % n))]}
    m="$W/$NAME/room$s/model.sld"
    [ -f "$m" ] || { echo "skip $m (missing)"; continue; }
    for split in val test; do
      $SLD eval --no-gate --json --model "$m" --scene "$W/room$s" --split "$split" > "$out/room$s.$split.json"
    done
    $SLD eval --no-gate --json --model "$m" --scene "$W/room$other" --split test > "$out/room$s.other.json"
    # Intrinsics of the rendered rooms (640x352, 70 deg horizontal field).
    cam=$(awk '{print $3","$3","$4","$5}' "$W/room$s/images/image-00000.intrinsics.txt")
    $SLD localize --no-gate --model "$m" --camera "$cam" "$noise"/*.png > "$out/room$s.noise.jsonl" || true
    echo "$NAME room $s done"
  done
done
python3 bench/gate_table.py "$W/gate" "$@"
