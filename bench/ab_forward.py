#!/usr/bin/env python3
"""Paired A/B of `sld model forward` builds on one model: median of per-turn ratios.

Usage (from the repository root; any Python 3):
    python3 bench/ab_forward.py MODEL.sld INPUT.f32 --builds OLD_SLD NEW_SLD [MORE...] \
        [--turns 20] [--repeats 7] [--level avx512|avx2|portable] [--threads 1]

On a shared host the same binary's fastest forward can move by a third
between batches of runs a minute apart, so comparing two builds' minima
taken at different times measures the host. Here every turn runs each
build for --repeats forwards, one build right after the other (the order
alternating between turns), and divides each build's fastest forward by
the first build's in that turn; the report is the median of those ratios
and their interquartile range, next to each build's overall fastest
forward. Each build must be an `sld` binary; the input is a raw f32
[C, H, W] tensor as `sld model forward --input` reads it.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile


def fastest(binary, model, inp, repeats, threads, env, out):
    r = subprocess.run(
        [binary, "model", "forward", model, "--input", inp, "--output", out,
         "--repeats", str(repeats), "--threads", str(threads)],
        env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{binary} failed:\n{r.stderr}")
    for line in r.stdout.splitlines():
        if line.startswith("forward_min_ms"):
            return float(line.split()[1])
    sys.exit(f"{binary} printed no forward_min_ms (an old build?)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("input")
    ap.add_argument("--builds", nargs="+", required=True, help="sld binaries; ratios are to the first")
    ap.add_argument("--turns", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=7, help="forwards per build per turn")
    ap.add_argument("--level", default=None, help="SLD_CPU_LEVEL for every build")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    if len(a.builds) < 2:
        sys.exit("--builds needs at least two binaries")
    env = dict(os.environ)
    if a.level:
        env["SLD_CPU_LEVEL"] = a.level
    times = {b: [] for b in a.builds}
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "heatmaps.f32")
        for t in range(a.turns):
            for b in (a.builds if t % 2 == 0 else a.builds[::-1]):
                times[b].append(fastest(b, a.model, a.input, a.repeats, a.threads, env, out))
    base = times[a.builds[0]]
    for b in a.builds:
        rs = sorted(x / y for x, y in zip(times[b], base))
        q = len(rs) // 4
        print(f"{b}: fastest {min(times[b]):.3f} ms, median ratio {statistics.median(rs):.3f} "
              f"(IQR {rs[q]:.3f}–{rs[-q - 1]:.3f}, {len(rs)} turns)")


if __name__ == "__main__":
    main()
