#!/usr/bin/env python3
"""One convolution layer: sld-core against ONNX Runtime, per-layer times.

Usage (from the repository root; the venv is bench/.venv-ort, as forward_ort.py):
    python3 bench/layer_ort.py CIN H W COUT K STRIDE GROUPS [DILATION]
    python3 bench/layer_ort.py 672 88 160 672 5 1 672     # a 5x5 depthwise
    python3 bench/layer_ort.py 320 44 80 80 3 1 1 4       # an ASPP branch
    SLD_CPU_LEVEL=avx2 python3 bench/layer_ort.py 112 88 160 672 1 1 1

Builds a two-layer model: a 1x1 convolution from the 3-channel input to CIN
channels, then the layer under test (relu6, "same" padding, random weights).
Runs it with `sld model forward --profile` (the release build) and in ONNX
Runtime with its profiler, and prints the median time of the layer under
test in each over --repeats runs, its GFLOP/s, and the largest difference
between the two outputs. The first layer is left out of both times.
"""
import argparse
import collections
import json
import os
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import forward_ort as fo  # noqa: E402

ROOT = fo.ROOT


def write_model(path, ci, h, w, co, k, s, g, d, rng, post=False):
    import numpy as np
    pad = (k // 2) * d
    layers = [
        {"name": "pre", "op": "conv2d", "input": "image", "weight": "pre.weight", "bias": "pre.bias",
         "stride": [1, 1], "padding": [0] * 4, "dilation": [1, 1], "groups": 1, "activation": "relu6"},
        {"name": "layer", "op": "conv2d", "input": "pre", "weight": "layer.weight", "bias": "layer.bias",
         "stride": [s, s], "padding": [pad] * 4, "dilation": [d, d], "groups": g, "activation": "relu6"},
    ]
    ho = (h + 2 * pad - d * (k - 1) - 1) // s + 1
    if post:
        # A 1x1 layer after the one under test, so that it writes its
        # intermediate layout (blocked) rather than the planar output.
        layers.append({"name": "post", "op": "conv2d", "input": "layer", "weight": "post.weight", "bias": "post.bias",
                       "stride": [1, 1], "padding": [0] * 4, "dilation": [1, 1], "groups": 1, "activation": "none"})
    model = {"stride": max(1, h // ho), "landmarks": 16 if post else co, "heatmaps": "gaussian", "scene": "layer_ort",
             "graph": {"input": {"width": w, "height": h, "channels": 3, "mean": [0.0] * 3, "std": [1.0] * 3},
                       "layers": layers, "outputs": ["post" if post else "layer"]}}
    tensors = {
        "pre.weight": rng.standard_normal((ci, 3, 1, 1)).astype("<f4"),
        "pre.bias": rng.standard_normal(ci).astype("<f4"),
        "layer.weight": (rng.standard_normal((co, ci // g, k, k)) * 0.1).astype("<f4"),
        "layer.bias": rng.standard_normal(co).astype("<f4"),
        "landmarks": np.zeros((16 if post else co, 3), "<f4"),
    }
    if post:
        tensors["post.weight"] = (rng.standard_normal((16, co, 1, 1)) * 0.1).astype("<f4")
        tensors["post.bias"] = rng.standard_normal(16).astype("<f4")
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    header["__metadata__"] = {"sld.version": "1", "sld.model": json.dumps(model)}
    hj = json.dumps(header).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj + b"".join(blobs))
    return ho, (w + 2 * pad - d * (k - 1) - 1) // s + 1


def main():
    fo.ensure_venv()
    import numpy as np
    import onnxruntime as ort
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ["cin", "h", "w", "cout", "k", "stride", "groups"]:
        ap.add_argument(name, type=int)
    ap.add_argument("dilation", type=int, nargs="?", default=1)
    ap.add_argument("--repeats", type=int, default=11)
    ap.add_argument("--then-1x1", dest="post", action="store_true",
                    help="follow the layer with a 1x1 convolution to 16 channels, so that it writes the "
                         "intermediate (blocked) layout, not the network's planar output")
    a = ap.parse_args()
    subprocess.check_call(["cargo", "build", "--release", "--quiet", "-p", "sld-train"], cwd=ROOT)
    sld = os.path.join(ROOT, "target", "release", "sld")
    tmp = tempfile.mkdtemp()
    model, inp, out = (os.path.join(tmp, n) for n in ("l.sld", "l.in", "l.out"))
    rng = np.random.default_rng(0)
    ho, wo = write_model(model, a.cin, a.h, a.w, a.cout, a.k, a.stride, a.groups, a.dilation, rng, a.post)
    x = rng.random((1, 3, a.h, a.w), dtype=np.float32)
    x.tofile(inp)
    text = subprocess.check_output([sld, "model", "forward", model, "--input", inp, "--output", out,
                                    "--repeats", str(a.repeats), "--profile"]).decode()
    # The profile line of step 1 (the layer under test): "1 layer KERNEL... [C, H, W] MS SHARE% GFLOPS".
    fields = next(l for l in text.splitlines() if l.split()[:2] == ["1", "layer"]).split()
    sld_ms = float(fields[-3])
    path = " ".join(fields[2:next(i for i, f in enumerate(fields) if f.startswith("["))])

    info, tensors = fo.read_sld(model)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.enable_profiling = True
    so.profile_file_prefix = os.path.join(tmp, "ortprof")
    sess = ort.InferenceSession(fo.to_onnx(info, tensors).SerializeToString(), so,
                                providers=["CPUExecutionProvider"])
    ref = sess.run(None, {"image": x})[0].ravel()
    for _ in range(a.repeats):
        sess.run(None, {"image": x})
    by_node = collections.defaultdict(list)
    for e in json.load(open(sess.end_profiling())):
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            by_node[e["name"]].append(e["dur"] / 1e3)
    # ORT names nodes after their outputs; the layer under test writes
    # "heatmaps" (or "layer" when a 1x1 layer follows it).
    want = "layer" if a.post else "heatmaps"
    ort_ms = [sorted(v)[len(v) // 2] for n, v in by_node.items() if n.startswith(want)]
    ort_ms = ort_ms[0] if ort_ms else float("nan")
    ours = np.fromfile(out, dtype="<f4")
    flops = 2 * a.cout * (a.cin // a.groups) * a.k * a.k * ho * wo
    print(f"{a.cin}x{a.h}x{a.w} -> {a.cout}x{ho}x{wo}, k{a.k} s{a.stride} g{a.groups} d{a.dilation} "
          f"[{path}], level {os.environ.get('SLD_CPU_LEVEL', 'best')}")
    print(f"sld-core {sld_ms:8.3f} ms {flops / sld_ms / 1e6:7.1f} GFLOP/s")
    print(f"ORT      {ort_ms:8.3f} ms {flops / ort_ms / 1e6:7.1f} GFLOP/s   ratio sld/ORT {sld_ms / ort_ms:.2f}")
    print(f"max abs diff {float(np.abs(ref - ours).max()):.1e} (max |output| {float(np.abs(ref).max()):.2f})")


if __name__ == "__main__":
    main()
