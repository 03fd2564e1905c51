#!/usr/bin/env python3
"""Side-by-side PnP benchmark: `sld pnp` vs PoseLib vs OpenCV on the same cases.

Usage (from the repository root):
    python3 bench/pnp_peers.py [--cases 200] [--repeats 3] [--seed 1]

Creates bench/.venv with numpy, poselib==2.0.5 and opencv-python-headless on
first use, builds `sld` in release mode, generates seeded synthetic cases that
resemble landmark localisation (640x480, f 500-600 px, landmarks 1-8 m away,
Gaussian pixel noise on inliers, random pixels for outliers, confidences
higher for inliers but overlapping), solves them with all three, single
threaded, and prints per family: median and p90 solve time, 5cm/5deg and
1cm/1deg recall, median rotation/position error. Times are medians over
`--repeats` runs of each case. PoseLib/OpenCV times are taken in Python around
the call (includes the binding's array conversion, a few microseconds); sld's
are taken in Rust around the solve.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, "bench", ".venv")
OUT = os.path.join(ROOT, "bench", "out")

# (name, N, outlier fraction, pixel sigma)
FAMILIES = [
    ("N8-o25-s3", 8, 0.25, 3.0),
    ("N60-o75-s4", 60, 0.75, 4.0),
    ("N200-o85-s3", 200, 0.85, 3.0),
    ("N1000-o60-s1.5", 1000, 0.60, 1.5),
    ("N100-o10-s2", 100, 0.10, 2.0),
    ("N300-o50-s2", 300, 0.50, 2.0),
]


def ensure_venv():
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    py = os.path.join(VENV, "bin", "python")
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
        subprocess.check_call([py, "-m", "pip", "install", "-q", "numpy", "poselib==2.0.5", "opencv-python-headless"])
    os.execv(py, [py] + sys.argv)


def rotation(rng):
    import numpy as np
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    ang = rng.uniform(0, np.pi)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(ang) * k + (1 - np.cos(ang)) * k @ k


def make_case(rng, n, out_frac, sigma):
    import numpy as np
    w, h = 640, 480
    f = rng.uniform(500, 600)
    cx, cy = (w - 1) / 2 + rng.uniform(-10, 10), (h - 1) / 2 + rng.uniform(-10, 10)
    R = rotation(rng)
    c = rng.uniform(-3, 3, size=3)  # camera centre inside a room, metres
    t = -R @ c
    u = rng.uniform(0, w - 1, size=n)
    v = rng.uniform(0, h - 1, size=n)
    z = rng.uniform(1, 8, size=n)
    pc = np.stack([(u - cx) / f * z, (v - cy) / f * z, z], axis=1)
    pw = (pc - t) @ R  # R^T (pc - t)
    n_out = int(round(n * out_frac))
    inlier = np.arange(n) >= n_out
    p2 = np.stack([u, v], axis=1) + rng.normal(scale=sigma, size=(n, 2))
    p2[~inlier] = np.stack([rng.uniform(0, w - 1, n_out), rng.uniform(0, h - 1, n_out)], axis=1)
    conf = np.where(inlier, rng.uniform(0.3, 1.0, n), rng.uniform(0.2, 0.7, n))
    perm = rng.permutation(n)
    return {
        "camera": {"width": w, "height": h, "fx": f, "fy": f, "cx": cx, "cy": cy},
        "points2d": p2[perm].tolist(),
        "points3d": pw[perm].tolist(),
        "confidence": conf[perm].tolist(),
        "R_gt": R.tolist(),
        "t_gt": t.tolist(),
    }


def errors(R_gt, t_gt, R, t):
    import numpy as np
    R_gt, t_gt, R, t = map(np.asarray, (R_gt, t_gt, R, t))
    cosang = np.clip((np.trace(R_gt.T @ R) - 1) / 2, -1, 1)
    rot = np.degrees(np.arccos(cosang))
    pos = np.linalg.norm(R_gt.T @ t_gt - R.T @ t)
    return rot, pos


SLD_EXTRA = []


def run_sld(path, repeats, thr):
    exe = os.path.join(ROOT, "target", "release", "sld")
    runs = []
    for k in range(repeats):
        out = path.replace(".json", f".sld{k}.json")
        subprocess.check_call([exe, "pnp", "--input", path, "--output", out, "--max-reproj-px", str(thr)] + SLD_EXTRA,
                              stderr=subprocess.DEVNULL)
        runs.append(json.load(open(out))["results"])
    res = []
    for i in range(len(runs[0])):
        r = runs[0][i]
        times = sorted(run[i]["time_us"] for run in runs)
        res.append((r["ok"], r["R"], r["t"], times[len(times) // 2]))
    return res


def run_poselib(cases, repeats, thr):
    import numpy as np
    import poselib
    res = []
    for c in cases:
        cam = c["camera"]
        camera = {"model": "PINHOLE", "width": cam["width"], "height": cam["height"],
                  "params": [cam["fx"], cam["fy"], cam["cx"], cam["cy"]]}
        p2 = np.asarray(c["points2d"])
        p3 = np.asarray(c["points3d"])
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            pose, info = poselib.estimate_absolute_pose(p2, p3, camera, {"max_reproj_error": thr}, {})
            times.append((time.perf_counter() - t0) * 1e6)
        ok = info["num_inliers"] >= 4
        res.append((ok, pose.R.tolist(), pose.t.tolist(), sorted(times)[len(times) // 2]))
    return res


def run_opencv(cases, repeats, thr):
    import numpy as np
    import cv2
    cv2.setNumThreads(1)
    res = []
    for c in cases:
        cam = c["camera"]
        K = np.array([[cam["fx"], 0, cam["cx"]], [0, cam["fy"], cam["cy"]], [0, 0, 1.0]])
        p2 = np.ascontiguousarray(c["points2d"], dtype=np.float64).reshape(-1, 1, 2)
        p3 = np.ascontiguousarray(c["points3d"], dtype=np.float64).reshape(-1, 1, 3)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            ok, rvec, tvec, inl = cv2.solvePnPRansac(p3, p2, K, None, iterationsCount=10000,
                                                     reprojectionError=thr, confidence=0.9999,
                                                     flags=cv2.SOLVEPNP_AP3P)
            if ok and inl is not None and len(inl) >= 4:
                idx = inl.ravel()
                rvec, tvec = cv2.solvePnPRefineLM(p3[idx], p2[idx], K, None, rvec, tvec)
            times.append((time.perf_counter() - t0) * 1e6)
        ok = bool(ok) and inl is not None and len(inl) >= 4
        R = cv2.Rodrigues(rvec)[0] if ok else np.eye(3)
        res.append((ok, R.tolist(), (tvec.ravel() if ok else np.zeros(3)).tolist(), sorted(times)[len(times) // 2]))
    return res


def summarize(cases, res):
    import numpy as np
    rots, poss, times = [], [], []
    for c, (ok, R, t, us) in zip(cases, res):
        if ok:
            r, p = errors(c["R_gt"], c["t_gt"], R, t)
        else:
            r, p = 180.0, 1e3
        rots.append(r)
        poss.append(p)
        times.append(us)
    rots, poss, times = map(np.asarray, (rots, poss, times))
    return {
        "t_med": float(np.median(times)),
        "t_p90": float(np.percentile(times, 90)),
        "r5": 100 * float(np.mean((rots < 5) & (poss < 0.05))),
        "r1": 100 * float(np.mean((rots < 1) & (poss < 0.01))),
        "rot_med": float(np.median(rots)),
        "pos_med_cm": 100 * float(np.median(poss)),
    }


def main():
    ensure_venv()
    import numpy as np
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=200, help="cases per family")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per case (median taken)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-reproj-px", type=float, default=8.0)
    ap.add_argument("--only", default="", help="comma-separated family names")
    ap.add_argument("--skip-peers", action="store_true", help="run sld only")
    ap.add_argument("--sld-args", default="", help="extra arguments for `sld pnp` (experiments)")
    args = ap.parse_args()
    SLD_EXTRA.extend(args.sld_args.split())
    os.makedirs(OUT, exist_ok=True)
    subprocess.check_call(["cargo", "build", "--release", "--quiet", "-p", "sld-train"], cwd=ROOT)
    print(f"{'family':<16} {'solver':<8} {'t_med us':>9} {'t_p90 us':>9} {'5cm5deg%':>9} {'1cm1deg%':>9} "
          f"{'rot_med':>8} {'pos_med cm':>10}")
    for fi, (name, n, frac, sigma) in enumerate(FAMILIES):
        if args.only and name not in args.only.split(","):
            continue
        rng = np.random.default_rng(args.seed * 1000 + fi)
        cases = [make_case(rng, n, frac, sigma) for _ in range(args.cases)]
        path = os.path.join(OUT, f"{name}.json")
        json.dump({"cases": cases}, open(path, "w"))
        solvers = [("sld", lambda: run_sld(path, args.repeats, args.max_reproj_px))]
        if not args.skip_peers:
            solvers += [("poselib", lambda: run_poselib(cases, args.repeats, args.max_reproj_px)),
                        ("opencv", lambda: run_opencv(cases, args.repeats, args.max_reproj_px))]
        rows = {}
        for sname, fn in solvers:
            s = summarize(cases, fn())
            rows[sname] = s
            print(f"{name:<16} {sname:<8} {s['t_med']:9.1f} {s['t_p90']:9.1f} {s['r5']:9.1f} {s['r1']:9.1f} "
                  f"{s['rot_med']:8.3f} {s['pos_med_cm']:10.2f}", flush=True)
        if "poselib" in rows:
            print(f"{'':<16} {'ratio':<8} sld/poselib median time = {rows['sld']['t_med'] / rows['poselib']['t_med']:.3f}",
                  flush=True)


if __name__ == "__main__":
    main()
