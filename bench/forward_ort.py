#!/usr/bin/env python3
"""CNN forward: sld-core vs ONNX Runtime on the same `.sld` weights.

Usage (from the repository root):
    python3 bench/forward_ort.py [--arch lite0|small|xfeat] [--landmarks 125] [--width 640] [--height 352] [--repeats 7] [--threads 1]
    SLD_CPU_LEVEL=avx2 python3 bench/forward_ort.py   # sld-core's AVX2 kernels on an AVX-512 host
    python3 bench/forward_ort.py --no-avx512          # both runtimes at AVX2 on an AVX-512 host
    python3 bench/forward_ort.py --rounds 5 --baseline /tmp/old/sld   # interleaved, against an older build

Creates bench/.venv-ort with numpy, onnx and onnxruntime on first use, writes a
random-weight EfficientNet-Lite0-s8 + ASPP model with `sld model random`,
translates its graph (docs/model-format.md) into ONNX with the same weights,
checks that ONNX Runtime and `sld model forward` give the same heatmaps
(max abs diff <= 1e-4 x max |activation|), then reports the median
single-thread forward time of each, from the input in place to the output in
place (sld-core's copy of the input into its arena is printed apart; ONNX
Runtime runs on bound input and output buffers). With --rounds R the runtimes take turns R
times (each turn the median of --repeats) and the median turn is reported, so
a machine whose speed drifts affects all of them alike; the fastest single
forward of each over all turns is printed too (the steadier figure on a
shared host, where noise only adds time); --baseline adds a
second `sld` binary (an older build) to the turns. With --no-avx512 the
script runs again under bench/cpuid_mask.c (built with gcc), which hides
AVX-512 from CPUID for this process and its children: ONNX Runtime has no
switch to cap its kernels, so this is how one AVX-512 host measures both
runtimes at AVX2.
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, "bench", ".venv-ort")


def ensure_venv():
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    py = os.path.join(VENV, "bin", "python")
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
        subprocess.check_call([py, "-m", "pip", "install", "-q", "numpy", "onnx", "onnxruntime"])
    os.execv(py, [py] + sys.argv)


def read_sld(path):
    import numpy as np
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__")
    base = 8 + n
    tensors = {}
    for name, t in header.items():
        assert t["dtype"] == "F32", name
        a, b = t["data_offsets"]
        tensors[name] = np.frombuffer(data[base + a:base + b], dtype="<f4").reshape(t["shape"])
    return json.loads(meta["sld.model"]), tensors


def to_onnx(info, tensors):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    g = info["graph"]
    inp = g["input"]
    nodes, inits, seen = [], [], set()

    def init(name):
        if name not in seen:
            seen.add(name)
            inits.append(numpy_helper.from_array(tensors[name].astype("float32"), name))
        return name

    def act(x, a, out):
        if a == "none":
            nodes.append(helper.make_node("Identity", [x], [out]))
        elif a == "relu":
            nodes.append(helper.make_node("Relu", [x], [out]))
        elif a == "relu6":
            lo, hi = out + ".lo", out + ".hi"
            inits.append(numpy_helper.from_array(__import__("numpy").array(0, "float32"), lo))
            inits.append(numpy_helper.from_array(__import__("numpy").array(6, "float32"), hi))
            nodes.append(helper.make_node("Clip", [x, lo, hi], [out]))
        elif a == "silu":
            nodes.append(helper.make_node("Sigmoid", [x], [out + ".sig"]))
            nodes.append(helper.make_node("Mul", [x, out + ".sig"], [out]))
        else:
            raise ValueError(a)

    for layer in g["layers"]:
        name, op = layer["name"], layer["op"]
        if op == "conv2d":
            ins = [layer["input"], init(layer["weight"])] + ([init(layer["bias"])] if layer.get("bias") else [])
            t, l, b, r = layer["padding"]
            nodes.append(helper.make_node("Conv", ins, [name + ".pre"], strides=layer["stride"],
                                          dilations=layer["dilation"], pads=[t, l, b, r], group=layer["groups"],
                                          kernel_shape=list(tensors[layer["weight"]].shape[2:])))
            act(name + ".pre", layer.get("activation", "none"), name)
        elif op == "add":
            nodes.append(helper.make_node("Sum", layer["inputs"], [name + ".pre"]))
            act(name + ".pre", layer.get("activation", "none"), name)
        elif op == "concat":
            nodes.append(helper.make_node("Concat", layer["inputs"], [name], axis=1))
        elif op == "activation":
            act(layer["input"], layer["activation"], name)
        elif op == "resize":
            # PyTorch's bilinear, align_corners=False: ONNX half_pixel. The
            # output takes `like`'s H x W and keeps `input`'s N x C.
            src, like = layer["input"], layer["like"]
            nodes.append(helper.make_node("Shape", [src], [name + ".nc"], start=0, end=2))
            nodes.append(helper.make_node("Shape", [like], [name + ".hw"], start=2, end=4))
            nodes.append(helper.make_node("Concat", [name + ".nc", name + ".hw"], [name + ".size"], axis=0))
            nodes.append(helper.make_node("Resize", [src, "", "", name + ".size"], [name], mode="linear",
                                          coordinate_transformation_mode="half_pixel"))
        else:
            raise ValueError(f"layer {name}: op {op} has no ONNX translation here")
    outs = g["outputs"]
    if len(outs) > 1:
        nodes.append(helper.make_node("Concat", outs, ["heatmaps"], axis=1))
    else:
        nodes.append(helper.make_node("Identity", outs, ["heatmaps"]))
    graph = helper.make_graph(
        nodes, "sld",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, inp["channels"], inp["height"], inp["width"]])],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, [1, info["landmarks"], None, None])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def mask_avx512():
    """Re-runs this script with AVX-512 hidden from CPUID (bench/cpuid_mask.c)
    unless that is already so; True once it is, exits when it cannot be."""
    import ctypes
    lib = os.path.join(ROOT, "target", "cpuid_mask.so")
    if os.environ.get("SLD_CPUID_MASK") == lib:
        if not ctypes.CDLL(lib).sld_cpuid_masked():
            sys.exit("--no-avx512: this kernel or hypervisor has no CPUID faulting; nothing was masked")
        return True
    os.makedirs(os.path.dirname(lib), exist_ok=True)
    subprocess.check_call(["gcc", "-O2", "-shared", "-fPIC", os.path.join(ROOT, "bench", "cpuid_mask.c"), "-o", lib])
    env = dict(os.environ, LD_PRELOAD=lib, SLD_CPUID_MASK=lib)
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def main():
    ensure_venv()
    import numpy as np
    import onnxruntime as ort
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", choices=["lite0", "small", "xfeat"], default="lite0",
                    help="the network (`sld model random --arch`): lite0 = EfficientNet-Lite0-s8 + ASPP, "
                         "small = the small backbone + scene head, xfeat = the recommended recipe's network")
    ap.add_argument("--landmarks", type=int, default=125)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=352)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=1, help="interleaved turns; the median turn is reported")
    ap.add_argument("--baseline", help="another sld binary (e.g. an older build) to time in the same turns")
    ap.add_argument("--no-avx512", action="store_true",
                    help="hide AVX-512 from both runtimes (CPUID faulting, bench/cpuid_mask.c): both run AVX2 kernels")
    args = ap.parse_args()
    masked = args.no_avx512 and mask_avx512()
    # The compiler itself runs unmasked (rustc's own SIGSEGV handler would
    # take the CPUID faults).
    plain = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    subprocess.check_call(["cargo", "build", "--release", "--quiet", "-p", "sld-train"], cwd=ROOT, env=plain)
    sld = os.path.join(ROOT, "target", "release", "sld")
    tmp = tempfile.mkdtemp()
    model = os.path.join(tmp, "m.sld")
    subprocess.check_call([sld, "model", "random", "--out", model, "--arch", args.arch, "--landmarks", str(args.landmarks),
                           "--width", str(args.width), "--height", str(args.height)])
    info, tensors = read_sld(model)
    onnx_model = to_onnx(info, tensors)
    channels = info["graph"]["input"]["channels"]
    x = np.random.default_rng(0).random((1, channels, args.height, args.width), dtype=np.float32)
    x.tofile(os.path.join(tmp, "in.f32"))
    def sld_forward(binary, out_name):
        out = subprocess.check_output([binary, "model", "forward", model, "--input", os.path.join(tmp, "in.f32"),
                                       "--output", os.path.join(tmp, out_name), "--repeats", str(args.repeats),
                                       "--threads", str(args.threads)])
        vals = dict(l.split()[:2] for l in out.decode().splitlines() if l.startswith(("forward_", "input_")))
        if binary == sld:
            copies.append(float(vals.get("input_ms", "nan")))
        # Builds before forward_min_ms printed the median alone; builds
        # before input_ms timed the input copy inside the forward.
        return float(vals["forward_ms"]), float(vals.get("forward_min_ms", vals["forward_ms"]))

    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(onnx_model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    import time
    # Both runtimes are timed from the input in place to the output in
    # place: sld-core's forward leaves out its copy of the input into the
    # arena (printed apart), and ONNX Runtime runs on bound buffers (the
    # input array as it is, the output preallocated once), which leaves
    # out sess.run's argument conversion and output allocation.
    binding = sess.io_binding()
    binding.bind_cpu_input("image", x)
    out_shape = sess.run(None, {"image": x})[0].shape
    y = ort.OrtValue.ortvalue_from_shape_and_type(out_shape, np.float32, "cpu")
    binding.bind_ortvalue_output(sess.get_outputs()[0].name, y)
    copies = []

    def ort_forward():
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            sess.run_with_iobinding(binding)
            times.append((time.perf_counter() - t0) * 1e3)
        return sorted(times)[len(times) // 2], min(times)

    sld_runs, base_runs, ort_runs = [], [], []
    for _ in range(max(1, args.rounds)):
        sld_runs.append(sld_forward(sld, "out.f32"))
        if args.baseline:
            base_runs.append(sld_forward(args.baseline, "base.f32"))
        ort_runs.append(ort_forward())
        if args.threads > 1:
            # ORT's workers spin for a while after a run; let them park
            # before the next turn's sld-core runs, or they take a core
            # from it (sld-core's own workers spin too, within its process).
            time.sleep(0.5)
    median = lambda v: sorted(m for m, _ in v)[len(v) // 2]
    # The fastest single forward of all turns: on a shared host noise only
    # adds time, so this is the steadier comparison (both are printed).
    fastest = lambda v: min(m for _, m in v)
    sld_ms, ort_ms = median(sld_runs), median(ort_runs)
    ours = np.fromfile(os.path.join(tmp, "out.f32"), dtype="<f4")
    ref = sess.run(None, {"image": x})[0].ravel()
    assert np.array_equal(ref, y.numpy().ravel()), "the bound output differs from sess.run's"
    diff = float(np.abs(ref - ours).max())
    peak = float(np.abs(ref).max())
    assert diff <= 1e-4 * peak, f"outputs differ: max abs diff {diff} vs max |activation| {peak}"
    net = {"lite0": "EfficientNet-Lite0-s8 + ASPP", "small": "small backbone (32) + scene head",
           "xfeat": "XFeat trunk + scene head"}[args.arch]
    print(f"{net} ({args.landmarks} landmarks) at {args.width}x{args.height}, {args.threads} thread(s), "
          f"median of {args.repeats} x {max(1, args.rounds)} turn(s), sld-core level {os.environ.get('SLD_CPU_LEVEL', 'best')}"
          + (", AVX-512 hidden from both (CPUID masked)" if masked else ""))
    print(f"max abs diff       {diff:.2e} (max |activation| {peak:.2f})")
    print(f"sld-core forward   {sld_ms:.1f} ms (+ {sorted(copies)[len(copies) // 2]:.2f} ms to copy the input in, apart)")
    print(f"ONNX Runtime {ort.__version__}  {ort_ms:.1f} ms")
    print(f"ratio sld/ORT      {sld_ms / ort_ms:.2f}")
    print(f"fastest forwards   sld-core {fastest(sld_runs):.2f} ms, ORT {fastest(ort_runs):.2f} ms, "
          f"ratio {fastest(sld_runs) / fastest(ort_runs):.2f}")
    if args.baseline:
        base_ms = median(base_runs)
        print(f"baseline forward   {base_ms:.1f} ms ({args.baseline})")
        print(f"ratio baseline/ORT {base_ms / ort_ms:.2f}")
        print(f"fastest baseline   {fastest(base_runs):.2f} ms, ratio to ORT {fastest(base_runs) / fastest(ort_runs):.2f}")
    if args.rounds > 1:
        # Two decimals below 10 ms (the small network's turns are ~1.5 ms).
        ms = lambda runs: " ".join(f"{v:.2f}" if v < 10 else f"{v:.0f}" for v, _ in runs)
        print("turns (ms): sld " + ms(sld_runs)
              + (" | baseline " + ms(base_runs) if base_runs else "")
              + " | ORT " + ms(ort_runs))


if __name__ == "__main__":
    main()
