#!/usr/bin/env bash
# Seeds every fuzz corpus with real files the project produces: a rendered
# scene (intrinsics, poses, split pickle, depth PNGs), its landmarks and
# visibility, the committed COLMAP fixture, depth maps in every format,
# the beacon kit's model and heatmaps from running it.
# Usage: fuzz/seed.sh [SLD_BINARY]   (writes fuzz/corpus/TARGET/)
set -euo pipefail
cd "$(dirname "$0")/.."
SLD=${1:-target/release/sld}
[ -x "$SLD" ] || cargo build --release -p sld-train --bin sld
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
C=fuzz/corpus
mkdir -p $C/{model_load,localize,decode,pnp,colmap_bin,colmap_txt,indoor6_text,split_pickle,depth_map,c_abi,pth_import}

# A tiny rendered scene and its landmarks.
"$SLD" synth --out "$T/scene" --images 12 --sessions 2 --width 64 --height 48 >/dev/null
"$SLD" landmarks --scene "$T/scene" --count 12 --min-track 2 --min-span 0.01 >/dev/null
# Selector byte, then the file (see each target's header comment).
prefix() { { printf "\\x$(printf %02x "$1")"; cat "$2"; } > "$3"; }
k=0
for f in "$T"/scene/images/*.intrinsics.txt; do prefix 0 "$f" $C/indoor6_text/intr$k; k=$((k+1)); [ $k -ge 3 ] && break; done
k=0
for f in "$T"/scene/images/*.pose.txt; do prefix 1 "$f" $C/indoor6_text/pose$k; k=$((k+1)); [ $k -ge 3 ] && break; done
for f in "$T"/scene/landmarks/landmarks-*.txt; do prefix 2 "$f" $C/indoor6_text/landmarks; done
for f in "$T"/scene/landmarks/visibility-*.txt; do prefix 3 "$f" $C/indoor6_text/visibility; done
cp "$T/scene/train_test_val.pkl" $C/split_pickle/split.pkl

# COLMAP sparse model (bin and txt): the committed fixture (made by COLMAP,
# bench/make_colmap_fixture.sh), cut to its first records so that seeds
# stay small (every record intact; counts rewritten).
python3 - sld-train/tests/fixtures/colmap-room5 "$C" <<'PY'
import struct, sys
F, C = sys.argv[1], sys.argv[2]
def w(name, sel, data):
    open(f'{C}/{name}', 'wb').write(bytes([sel]) + data)
b = open(f'{F}/bin/cameras.bin', 'rb').read()
w('colmap_bin/cameras', 0, b)
b = open(f'{F}/bin/images.bin', 'rb').read()
n, = struct.unpack_from('<Q', b, 0); pos = 8; out = []
for _ in range(min(n, 3)):
    start = pos; pos += 4 + 56 + 4
    end = b.index(b'\0', pos); pos = end + 1
    np, = struct.unpack_from('<Q', b, pos)
    keep = min(np, 4)
    out.append(b[start:pos] + struct.pack('<Q', keep) + b[pos + 8:pos + 8 + 24 * keep])
    pos += 8 + 24 * np
ids = {struct.unpack_from('<i', r, 0)[0] for r in out}
w('colmap_bin/images', 1, struct.pack('<Q', len(out)) + b''.join(out))
b = open(f'{F}/bin/points3D.bin', 'rb').read()
n, = struct.unpack_from('<Q', b, 0); pos = 8; out = []
while pos < len(b) and len(out) < 20:
    head = b[pos:pos + 43]; tl, = struct.unpack_from('<Q', b, pos + 43)
    track = [struct.unpack_from('<ii', b, pos + 51 + 8 * k) for k in range(tl)]
    track = [t for t in track if t[0] in ids][:3]
    pos += 51 + 8 * tl
    if track:
        out.append(head + struct.pack('<Q', len(track)) + b''.join(struct.pack('<ii', *t) for t in track))
w('colmap_bin/points3D', 2, struct.pack('<Q', len(out)) + b''.join(out))
for name, sel, keep in [('cameras', 0, 10), ('images', 1, 10), ('points3D', 2, 25)]:
    lines = open(f'{F}/txt/{name}.txt').read().splitlines()[:keep]
    if name == 'images':  # pose line + a short 2D-point line per record
        lines = [' '.join(l.split()[:12]) if i >= 4 and i % 2 == 1 else l for i, l in enumerate(lines)]
    w(f'colmap_txt/{name}', sel, ('\n'.join(lines) + '\n').encode())
PY

# Depth maps in every format (selector: 0 npy, 1 pfm, 2 png, 3 bin).
"$SLD" depth simulate --scene "$T/scene" --index 0 --out "$T/sim" >/dev/null
for e in npy pfm png bin; do
  "$SLD" depth fill --mde "$T/sim/mde.npy" --depth "$T/sim/colmap.bin" --out "$T/filled.$e" >/dev/null
done
prefix 0 "$T/filled.npy" $C/depth_map/npy
prefix 1 "$T/filled.pfm" $C/depth_map/pfm
prefix 2 "$T/filled.png" $C/depth_map/png
prefix 3 "$T/filled.bin" $C/depth_map/bin
prefix 2 "$T/scene/images/$(ls "$T/scene/images" | grep depth.png | head -1)" $C/depth_map/scene-depth-png

# Models: the beacon kit, and its heatmaps as decoder input.
"$SLD" model beacons --out "$T/kit" --width 96 --height 64 --landmarks 5 >/dev/null
cp "$T/kit/model.sld" $C/model_load/beacons.sld
cp "$T/kit/model.sld" $C/localize/beacons.sld
python3 - "$T" "$C" <<'PY'
import struct, sys, random
T, C = sys.argv[1], sys.argv[2]
# Decoder seeds: header (L, H, W, refinement, radius, threshold, stride,
# offset, fill) + raw floats: a Gaussian blob per map.
import math
L, H, W = 4, 12, 16
maps = []
for l in range(L):
    cx, cy = 2 + 3 * l, 3 + 2 * l
    maps += [math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 2.0) for y in range(H) for x in range(W)]
for r in range(3):
    hdr = bytes([L, H, W, r, 4]) + struct.pack('<fff', 0.2, 8.0, 3.5) + bytes([0])
    open(f'{C}/decode/gauss{r}', 'wb').write(hdr + struct.pack(f'<{len(maps)}f', *maps))
# PnP seeds: mode 2/3 (a perturbed exact problem), defaults-like options.
for n, mode in [(12, 2), (40, 3), (6, 3)]:
    b = bytes([n, mode]) + struct.pack('<HH', 640, 480) + struct.pack('<5d', 100, 100, 319.5, 239.5, 0)
    b += struct.pack('<d', 8.0) + bytes([1]) + struct.pack('<HH', 4000, 20) + struct.pack('<dd', 0.9999, 1.0)
    b += bytes([0, 1, 10]) + struct.pack('<d', 3.0) + bytes([50, 4]) + struct.pack('<H', 120) + bytes([4])
    b += struct.pack('<Q', 7) + bytes(random.Random(n).randrange(256) for _ in range(3 * n))
    open(f'{C}/pnp/exact{n}', 'wb').write(b)
PY
# Decoder seed from the real network: the kit's heatmaps.
python3 - "$T" <<'PY'
import struct, sys
T = sys.argv[1]
# image.ppm (P6) → normalised [3, H, W] f32 as the model expects is
# model-specific; the raw RGB/255 planes are a fine network input here.
d = open(f'{T}/kit/image.ppm', 'rb').read()
parts = d.split(b'\n', 3)
w, h = map(int, parts[1].split()); px = parts[3]
planes = [[px[3 * i + c] / 255.0 for i in range(w * h)] for c in range(3)]
open(f'{T}/kit/input.f32', 'wb').write(struct.pack(f'<{3 * w * h}f', *sum(planes, [])))
PY
"$SLD" model forward "$T/kit/model.sld" --input "$T/kit/input.f32" --output "$T/kit/heat.f32" --repeats 1 >/dev/null 2>&1 || true
if [ -s "$T/kit/heat.f32" ]; then
  { printf '\x05\x40\x60\x02\x04'; printf '\xcd\xcc\x4c\x3e\x00\x00\x00\x41\x00\x00\x60\x40\x00'; cat "$T/kit/heat.f32"; } > $C/decode/beacons
fi
# The ImageNet checkpoint (scripts/fetch-imagenet-weights.sh), cut to its
# first 256 KiB: the pickles (magic, protocol, system info, the state dict
# of every tensor, storage keys) and the first storages.
PTH=.cache/imagenet/efficientnet-lite0-57934424.pth
[ -f "$PTH" ] && head -c 262144 "$PTH" > $C/pth_import/lite0-head.pth

for d in $C/*; do echo "$(basename $d): $(ls $d | wc -l) seeds"; done
