"""Writes N noise images (PNG) for the reliability-gate calibration, four
kinds in turn: white RGB noise, noise smoothed at 1/8 resolution (blotches),
noise at 1/32 resolution (large patches), and grey with faint noise (a lens
cap, a wall). Usage: gate_noise.py OUT N WIDTH HEIGHT."""
import os
import sys

import numpy as np
from PIL import Image

out, n, w, h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(20261203)


def upsampled(f):
    small = rng.random((max(1, h // f), max(1, w // f), 3)) * 255
    return np.asarray(Image.fromarray(small.astype(np.uint8)).resize((w, h), Image.BILINEAR))


for i in range(n):
    kind = i % 4
    if kind == 0:
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    elif kind == 1:
        img = upsampled(8)
    elif kind == 2:
        img = upsampled(32)
    else:
        img = np.clip(rng.uniform(40, 200) + rng.normal(0, 4, (h, w, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(f"{out}/noise-{i:03d}.png")
