#!/usr/bin/env python3
"""Depth fill, side by side: `sld depth fill` against scikit-learn's
MLPRegressor(hidden_layer_sizes=(100, 50), random_state=42, max_iter=1000),
the paper's exact setup, on the same inputs.

For each image of a rendered scene: `sld depth simulate` makes an MDE map
and a COLMAP-like map with ground truth; this script hides 20 % of the
known COLMAP-like pixels in square blocks (the same mask for both), writes
the rest as kept.npy, lets each method fill kept.npy, and scores the hidden
pixels against the COLMAP-like values (the paper's protocol) and against
the true depth. scikit-learn gets the paper's features (MDE value, pixel
coordinates, RGB) through a StandardScaler, fitted on the kept pixels.

    python3 bench/depth_sklearn.py [--scene DIR] [--images 3] [--sld target/release/sld]

Needs numpy, pillow and scikit-learn (installed with pip if missing).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def ensure(pkgs):
    missing = []
    for mod, pkg in pkgs:
        try:
            __import__(mod)
        except ImportError:
            missing.append(pkg)
    if missing:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", *missing])


ensure([("numpy", "numpy"), ("PIL", "pillow"), ("sklearn", "scikit-learn")])
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from sklearn.neural_network import MLPRegressor  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402


def read_colmap_bin(path):
    with open(path, "rb") as f:
        raw = f.read()
    fields, pos = [], 0
    for _ in range(3):
        end = raw.index(b"&", pos)
        fields.append(int(raw[pos:end]))
        pos = end + 1
    w, h, c = fields
    a = np.frombuffer(raw[pos:], dtype="<f4", count=w * h * c).reshape(c, h, w)[0].copy()
    a[~(a > 0)] = np.nan
    return a


def metrics(pred, ref):
    ok = np.isfinite(pred) & (pred > 0)
    p, r = pred[ok].astype(np.float64), ref[ok].astype(np.float64)
    e = p - r
    return {
        "n": int(ok.sum()),
        "unfilled": int((~ok).sum()),
        "mse": float(np.mean(e**2)),
        "mae": float(np.mean(np.abs(e))),
        "rmse": float(np.sqrt(np.mean(e**2))),
        "abs_rel": float(np.mean(np.abs(e) / r)),
        "delta1": float(np.mean(np.maximum(p / r, r / p) < 1.25)),
    }


def block_mask(known, frac, rng):
    h, w = known.shape
    side = max(1, min(w, h) // 8)
    hidden = np.zeros_like(known)
    target = int(known.sum() * frac)
    while (hidden & known).sum() < target:
        x0 = rng.integers(0, w - side + 1)
        y0 = rng.integers(0, h - side + 1)
        hidden[y0 : y0 + side, x0 : x0 + side] = True
    return hidden & known


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scene", help="a rendered scene (default: render one)")
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--sld", default="target/release/sld")
    ap.add_argument("--method", default="spatial")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="sld-depth-bench-")
    scene = args.scene
    if scene is None:
        scene = os.path.join(work, "scene")
        subprocess.check_call([args.sld, "synth", "--out", scene, "--images", "30", "--sessions", "1", "--seed", "5"])
    rows = []
    rng = np.random.default_rng(0)
    for k in range(args.images):
        index = 3 + 10 * k
        d = os.path.join(work, f"sim{index}")
        subprocess.check_call(
            [args.sld, "depth", "simulate", "--scene", scene, "--index", str(index), "--out", d, "--seed", str(index)],
            stdout=subprocess.DEVNULL,
        )
        truth = np.load(os.path.join(d, "truth.npy"))
        mde = np.load(os.path.join(d, "mde.npy"))
        colmap = read_colmap_bin(os.path.join(d, "colmap.bin"))
        rgb = np.asarray(Image.open(os.path.join(d, "image.png")).convert("RGB"), dtype=np.float32)
        h, w = colmap.shape
        known = np.isfinite(colmap)
        hidden = block_mask(known, 0.2, rng)
        kept = colmap.copy()
        kept[hidden] = np.nan
        np.save(os.path.join(d, "kept.npy"), kept.astype(np.float32))

        # sld
        out = os.path.join(d, "sld.npy")
        t0 = time.perf_counter()
        subprocess.check_call(
            [args.sld, "depth", "fill", "--mde", os.path.join(d, "mde.npy"), "--depth", os.path.join(d, "kept.npy"),
             "--image", os.path.join(d, "image.png"), "--method", args.method, "--out", out],
            stdout=subprocess.DEVNULL,
        )
        t_sld = time.perf_counter() - t0
        ours = np.load(out)

        # scikit-learn, the paper's setup
        yy, xx = np.mgrid[0:h, 0:w]
        feats = np.stack([mde, xx / w, yy / h, rgb[..., 0], rgb[..., 1], rgb[..., 2]], axis=-1).reshape(-1, 6)
        train = np.isfinite(kept).reshape(-1)
        t0 = time.perf_counter()
        scaler = StandardScaler().fit(feats[train])
        reg = MLPRegressor(hidden_layer_sizes=(100, 50), random_state=42, max_iter=1000)
        reg.fit(scaler.transform(feats[train]), kept.reshape(-1)[train])
        pred = reg.predict(scaler.transform(feats[hidden.reshape(-1)]))
        t_sk = time.perf_counter() - t0

        hid = hidden.reshape(-1)
        row = {
            "image": index,
            "hidden": int(hid.sum()),
            "sld": {"seconds": t_sld, "vs_colmap": metrics(ours.reshape(-1)[hid], colmap.reshape(-1)[hid]),
                    "vs_truth": metrics(ours.reshape(-1)[hid], truth.reshape(-1)[hid])},
            "sklearn": {"seconds": t_sk, "epochs": int(reg.n_iter_),
                        "vs_colmap": metrics(pred, colmap.reshape(-1)[hid]),
                        "vs_truth": metrics(pred, truth.reshape(-1)[hid])},
        }
        rows.append(row)
        print(
            f"image {index}: sld {args.method} MAE {row['sld']['vs_colmap']['mae']:.4f} m (truth {row['sld']['vs_truth']['mae']:.4f}) "
            f"in {t_sld:.2f} s | sklearn MAE {row['sklearn']['vs_colmap']['mae']:.4f} m (truth {row['sklearn']['vs_truth']['mae']:.4f}) "
            f"in {t_sk:.1f} s, {reg.n_iter_} epochs | speed-up {t_sk / t_sld:.0f}x",
            flush=True,
        )
    med = lambda key, who: float(np.median([r[who][key] for r in rows]))  # noqa: E731
    mae = lambda who, ref: float(np.median([r[who][ref]["mae"] for r in rows]))  # noqa: E731
    summary = {
        "rows": rows,
        "median_seconds": {"sld": med("seconds", "sld"), "sklearn": med("seconds", "sklearn")},
        "median_mae_vs_colmap": {"sld": mae("sld", "vs_colmap"), "sklearn": mae("sklearn", "vs_colmap")},
        "median_mae_vs_truth": {"sld": mae("sld", "vs_truth"), "sklearn": mae("sklearn", "vs_truth")},
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}))
    with open(os.path.join(work, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(f"details: {os.path.join(work, 'summary.json')}")


if __name__ == "__main__":
    main()
