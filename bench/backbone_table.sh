#!/usr/bin/env bash
# The paper's Table 1/2 on rendered rooms, at CPU scale: a shared small
# backbone trained on K rooms (`sld train backbone`), then on an unseen room
# a scene head on that frozen backbone (`sld train head`) against full
# training from scratch (`sld train full`) with the same epochs, batch,
# learning rate and augmentation. Every room is recorded in SESSIONS
# lighting sessions; the last one (other lighting) is the test split, every
# 10th mapping image is validation. Prints recall, pixel error and
# wall-clock of each, on the query session (test) and on held-out mapping
# images (val).
# Usage: [IW=320 IH=176 SW=320 SH=176 IMAGES=240 SESSIONS=3 LM=100 WIDTH=16 HEAD=32 SEED0=11]
#        bench/backbone_table.sh [K] [EPOCHS] [WORKDIR]
# (network input IW×IH, rendered images SW×SH, rooms seeded SEED0..SEED0+K;
# EXPERIMENTS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
K=${1:-3}
EPOCHS=${2:-30}
W=${3:-bench/out/backbone_table}
SLD=target/release/sld
cargo build --release -q -p sld-train --bin sld
mkdir -p "$W"
IMG=(--images "${IMAGES:-240}" --sessions "${SESSIONS:-3}" --width "${SW:-320}" --height "${SH:-176}")
# Loose landmark filters: short synthetic paths leave few candidates under
# the Indoor6-sized defaults (EXPERIMENTS.md, "the geometry ceiling").
LMK=(--count "${LM:-100}" --min-track 10 --min-span 0.1 --radius 1)
NET=(--input-width "${IW:-320}" --input-height "${IH:-176}" --arch small
  --width "${WIDTH:-16}" --head-channels "${HEAD:-32}" --batch 2 --lr 2e-3
  --geometric --validate-every 0)
rooms=()
for k in $(seq 0 "$K"); do
  r="$W/room$k"
  if [ ! -d "$r" ]; then
    $SLD synth --out "$r" --seed $((${SEED0:-11} + k)) "${IMG[@]}" >/dev/null
    $SLD landmarks --scene "$r" "${LMK[@]}" >/dev/null
  fi
  rooms+=("$r")
done
unseen=${rooms[$K]}
scenes=()
for r in "${rooms[@]:0:$K}"; do scenes+=(--scene "$r"); done
time_of() { local t0; t0=$(date +%s.%N); "$@" >/dev/null; python3 -c "import time,sys; print(f'{time.time() - float(sys.argv[1]):.1f}')" "$t0"; }
tb=$(time_of $SLD train backbone "${scenes[@]}" --out "$W/bb" --epochs "$EPOCHS" "${NET[@]}")
th=$(time_of $SLD train head --scene "$unseen" --out "$W/head" --backbone "$W/bb/backbone.safetensors" --copies 2 --epochs "$EPOCHS" "${NET[@]}")
tf=$(time_of $SLD train full --scene "$unseen" --out "$W/full" --epochs "$EPOCHS" "${NET[@]}")
echo "backbone on $K rooms: $tb s; unseen room: head $th s, full $tf s"
for run in head full; do
  for split in test val; do
    echo "== $run (unseen room, $split split)"
    $SLD eval --model "$W/$run/model.sld" --scene "$unseen" --split "$split" | grep -E "recall|median error|detections|pixel error"
  done
done
for k in $(seq 0 $((K - 1))); do
  echo "== backbone run, room$k's own head (test split)"
  $SLD eval --model "$W/bb/room$k.sld" --scene "${rooms[$k]}" --split test | grep -E "recall 5cm|median error|pixel error"
done
