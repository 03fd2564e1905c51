#!/usr/bin/env bash
# Head training on the frozen ImageNet EfficientNet-Lite0 against full
# training of the SLD* network (Lite0 s8 + ASPP) on the same rendered scene,
# the same images, input size, batch, learning rate and epoch count:
# wall-clock per epoch from metrics.jsonl (training steps only), the head's
# one-off feature-buffer fill, and the validation numbers of each.
# Usage: bench/head_vs_full.sh [EPOCHS] [WORKDIR]   (EXPERIMENTS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=${1:-2}
W=${2:-bench/out/head_vs_full}
SLD=target/release/sld
cargo build --release -q -p sld-train --bin sld
./scripts/fetch-imagenet-weights.sh >/dev/null
mkdir -p "$W"
[ -f "$W/lite0.safetensors" ] || $SLD weights import .cache/imagenet/efficientnet-lite0-57934424.pth --out "$W/lite0.safetensors"
if [ ! -d "$W/scene" ]; then
  $SLD synth --out "$W/scene" --images 240 --sessions 3 --width 320 --height 176 --seed 1
  $SLD landmarks --scene "$W/scene" --count 100 --min-track 10
fi
COMMON=(--scene "$W/scene" --epochs "$EPOCHS" --batch 2 --lr 2e-3 --validate-every 0)
t0=$(date +%s.%N)
$SLD train head "${COMMON[@]}" --out "$W/head" --backbone "$W/lite0.safetensors" --copies 1
t1=$(date +%s.%N)
$SLD train full "${COMMON[@]}" --out "$W/full" --arch lite0
t2=$(date +%s.%N)
python3 - "$W" "$t0" "$t1" "$t2" <<'PY'
import json, sys, statistics
w, t0, t1, t2 = sys.argv[1], *map(float, sys.argv[2:])
def epochs(run):
    return [json.loads(l) for l in open(f"{w}/{run}/metrics.jsonl")]
h, f = epochs("head"), epochs("full")
hs = statistics.median(e["train_seconds"] for e in h)
fs = statistics.median(e["train_seconds"] for e in f)
print(f"epochs: {len(h)} head, {len(f)} full")
print(f"median s/epoch (training steps): head {hs:.1f}, full {fs:.1f}  -> {fs / hs:.1f}x per epoch")
print(f"whole command wall-clock (load, buffer fill, steps, export, final validation): head {t1 - t0:.1f} s, full {t2 - t1:.1f} s -> {(t2 - t1) / (t1 - t0):.1f}x")
for name, e in (("head", h[-1]), ("full", f[-1])):
    print(f"{name}: final loss {e['loss']:.1f}, val recall 5cm/5deg {e['val_recall_5cm_5deg']}, val pixel error {e['val_pixel_error']}")
PY
