#!/usr/bin/env python3
"""Where sld-core and ONNX Runtime differ: the forward split into stages.

Usage (from the repository root; the venv is bench/.venv-ort, as forward_ort.py):
    python3 bench/stages_ort.py [--arch lite0|small|xfeat] [--width 640 --height 352] [--threads 1]
        [--rounds 5] [--no-avx512]

Writes the random-weight model of forward_ort.py (Lite0-s8 + ASPP unless
--arch says otherwise), then
times ORT on the ONNX graph cut after each stage (the stem, every
inverted-residual block's last 1×1 convolution, the whole head): each cut
graph keeps only the nodes its output needs, so the difference between two
cuts is what ORT spends on the stage between them. ORT's own profiler is
not used: it adds a cost per node and overstated single layers by up to
~20 % (2026-12-05). sld-core's stages come from `sld model forward
--profile` (per-layer medians, which sum to the forward time). Each side
takes the minimum over --rounds (noise on a shared host only adds time).
"""
import argparse
import copy
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import forward_ort as fo  # noqa: E402


def cut(full, name):
    """The ONNX graph with `name` its only output and no node it does not need."""
    from onnx import TensorProto, helper
    m = copy.deepcopy(full)
    g = m.graph
    del g.output[:]
    g.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    need, keep = {name}, []
    for node in reversed(list(g.node)):
        if any(o in need for o in node.output):
            keep.append(node)
            need.update(node.input)
    keep.reverse()
    del g.node[:]
    g.node.extend(keep)
    inits = [i for i in g.initializer if i.name in need]
    del g.initializer[:]
    g.initializer.extend(inits)
    return m


def main():
    fo.ensure_venv()
    import numpy as np
    import onnxruntime as ort
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", choices=["lite0", "small", "xfeat"], default="lite0",
                    help="the network (as forward_ort.py); lite0 cuts after the stem and every block, "
                         "the others after every layer")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=352)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-avx512", action="store_true", help="both runtimes at AVX2 (see forward_ort.py)")
    args = ap.parse_args()
    masked = args.no_avx512 and fo.mask_avx512()
    plain = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    subprocess.check_call(["cargo", "build", "--release", "--quiet", "-p", "sld-train"], cwd=fo.ROOT, env=plain)
    sld = os.path.join(fo.ROOT, "target", "release", "sld")
    tmp = tempfile.mkdtemp()
    model, inp = os.path.join(tmp, "m.sld"), os.path.join(tmp, "in.f32")
    subprocess.check_call([sld, "model", "random", "--out", model, "--landmarks", "125", "--arch", args.arch,
                           "--width", str(args.width), "--height", str(args.height)], stdout=subprocess.DEVNULL)
    info, tensors = fo.read_sld(model)
    full = fo.to_onnx(info, tensors)
    layers = [l["name"] for l in info["graph"]["layers"]]
    if args.arch == "lite0":
        cuts = [n for n in layers if n == "stem" or n.endswith(".project")] + [layers[-1]]
    else:
        # Every layer; where the graph branches (skips, the head's
        # residuals) a cut holds only its own ancestors, so read the
        # stages of a branch together.
        cuts = layers
    channels = info["graph"]["input"]["channels"]
    x = np.random.default_rng(0).random((1, channels, args.height, args.width), dtype=np.float32)
    x.tofile(inp)
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    sessions = {c: ort.InferenceSession(cut(full, c).SerializeToString(), so, providers=["CPUExecutionProvider"])
                for c in cuts}
    ort_ms = {c: float("inf") for c in cuts}
    sld_ms = {}
    for _ in range(args.rounds):
        for c, s in sessions.items():
            s.run(None, {"image": x})
            t = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                s.run(None, {"image": x})
                t.append((time.perf_counter() - t0) * 1e3)
            ort_ms[c] = min(ort_ms[c], sorted(t)[len(t) // 2])
        text = subprocess.check_output([sld, "model", "forward", model, "--input", inp, "--output",
                                        os.path.join(tmp, "out.f32"), "--repeats", str(args.repeats),
                                        "--threads", str(args.threads), "--profile"]).decode()
        for line in text.splitlines():
            m = re.match(r"\s*\d+\s+(\S+)\s.*\]\s+([\d.]+)\s", line)
            if m:
                sld_ms[m.group(1)] = min(sld_ms.get(m.group(1), float("inf")), float(m.group(2)))
    net = {"lite0": "Lite0-s8 + ASPP", "small": "small (32) + scene head", "xfeat": "XFeat + scene head"}[args.arch]
    print(f"{net} (125) at {args.width}x{args.height}, {args.threads} thread(s), min of {args.rounds} rounds"
          + (", AVX-512 hidden from both" if masked else ""))
    print(f"{'stage (up to)':24s} {'sld ms':>8s} {'ORT ms':>8s} {'ratio':>6s}")
    done, prev_ort, total_sld = 0.0, 0.0, 0.0
    for c in cuts:
        upto = layers[:layers.index(c) + 1]
        s = sum(sld_ms.get(n, 0.0) for n in upto) - done
        o = ort_ms[c] - prev_ort
        print(f"{c:24s} {s:8.2f} {o:8.2f} {s / o if o > 0 else float('nan'):6.2f}")
        done += s
        prev_ort = ort_ms[c]
        total_sld = done
    print(f"{'whole forward':24s} {total_sld:8.2f} {ort_ms[cuts[-1]]:8.2f} {total_sld / ort_ms[cuts[-1]]:6.2f}")


if __name__ == "__main__":
    main()
