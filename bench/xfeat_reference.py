"""XFeat's trunk in NumPy, from xfeat.pt without torch: an independent
reference for `sld weights import-xfeat` + sld-core's forward pass.

Loads the PyTorch zip checkpoint with a restricted unpickler (tensors
rebuilt from their storages), runs model.py's forward (instance norm,
Conv-BN-ReLU blocks with batch norm as written, AvgPool2d(4) skip, bilinear
align_corners=False fusion) on a grey image, and compares with the features
`examples/xfeat_features.rs` wrote.

    python3 bench/xfeat_reference.py XFEAT.pt IMAGE.png W H SLD_FEATURES.f32
"""
import pickle, sys, zipfile
import numpy as np

def load(path):
    z = zipfile.ZipFile(path)
    root = z.namelist()[0].split("/")[0]
    def storage(key, dtype):
        return np.frombuffer(z.read(f"{root}/data/{key}"), dtype=dtype)
    class U(pickle.Unpickler):
        def find_class(self, mod, name):
            if (mod, name) == ("torch._utils", "_rebuild_tensor_v2"):
                def rebuild(st, off, size, stride, *_):
                    a = st[off:]
                    return np.lib.stride_tricks.as_strided(a, size, [s * a.itemsize for s in stride]).copy()
                return rebuild
            if (mod, name) == ("collections", "OrderedDict"):
                import collections
                return collections.OrderedDict
            if mod == "torch" and name.endswith("Storage"):
                return {"FloatStorage": np.float32, "LongStorage": np.int64}[name]
            raise pickle.UnpicklingError(f"{mod}.{name} not allowed")
        def persistent_load(self, pid):
            _, dtype, key, _, _ = pid
            return storage(key, dtype)
    return U(z.open(f"{root}/data.pkl")).load()

def conv(x, w, b=None, stride=1, pad=0):
    c, h, wd = x.shape
    o, ci, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    ho, wo = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    cols = np.empty((ci, k, k, ho, wo), np.float64)
    for i in range(k):
        for j in range(k):
            cols[:, i, j] = xp[:, i:i + stride * ho:stride, j:j + stride * wo:stride]
    y = np.tensordot(w.astype(np.float64), cols, axes=([1, 2, 3], [0, 1, 2]))
    return y if b is None else y + b[:, None, None]

def basic(sd, p, x, stride=1, pad=1):
    y = conv(x, sd[f"{p}.layer.0.weight"], stride=stride, pad=pad)
    m, v = sd[f"{p}.layer.1.running_mean"], sd[f"{p}.layer.1.running_var"]
    return np.maximum((y - m[:, None, None]) / np.sqrt(v[:, None, None] + 1e-5), 0)

def resize(x, oh, ow):
    def m(n_in, n_out):
        a = np.zeros((n_out, n_in))
        for i in range(n_out):
            s = max((i + 0.5) * n_in / n_out - 0.5, 0)
            i0 = min(int(s), n_in - 1); i1 = min(i0 + 1, n_in - 1); f = s - i0
            a[i, i0] += 1 - f; a[i, i1] += f
        return a
    return np.einsum("oh,chw,pw->cop", m(x.shape[1], oh), x, m(x.shape[2], ow))

def forward(sd, g):
    x = ((g - g.mean()) / np.sqrt(g.var() + 1e-5))[None]
    s = x.reshape(1, x.shape[1] // 4, 4, x.shape[2] // 4, 4).mean(axis=(2, 4))
    skip = conv(s, sd["skip1.1.weight"], sd["skip1.1.bias"])
    x1 = x
    for i, st in enumerate([1, 2, 1, 2]):
        x1 = basic(sd, f"block1.{i}", x1, st)
    x2 = x1 + skip
    for i in range(2):
        x2 = basic(sd, f"block2.{i}", x2)
    x3 = basic(sd, "block3.0", x2, 2); x3 = basic(sd, "block3.1", x3); x3 = basic(sd, "block3.2", x3, 1, 0)
    x4 = basic(sd, "block4.0", x3, 2); x4 = basic(sd, "block4.1", x4); x4 = basic(sd, "block4.2", x4)
    x5 = basic(sd, "block5.0", x4, 2); x5 = basic(sd, "block5.1", x5); x5 = basic(sd, "block5.2", x5)
    x5 = basic(sd, "block5.3", x5, 1, 0)
    h, w = x3.shape[1:]
    f = x3 + resize(x4, h, w) + resize(x5, h, w)
    f = basic(sd, "block_fusion.0", f); f = basic(sd, "block_fusion.1", f)
    return conv(f, sd["block_fusion.2.weight"], sd["block_fusion.2.bias"])

if __name__ == "__main__":
    pt, img, w, h, ours = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    sd = load(pt)
    # The image must already be w×h and grey (R = G = B), so that resizing
    # and the grey conversion (XFeat: channel mean; sld-core: luma) agree.
    from PIL import Image
    g = np.asarray(Image.open(img).convert("L"), np.float64) / 255.0
    assert g.shape == (h, w), g.shape
    ref = forward(sd, g)
    got = np.fromfile(ours, "<f4").reshape(ref.shape)
    diff = np.abs(ref - got).max(); peak = np.abs(ref).max()
    print(f"features {ref.shape}: max |diff| {diff:.2e}, max |feature| {peak:.2f}, relative {diff / peak:.2e}")
    sys.exit(0 if diff <= 1e-4 * max(peak, 1) else 1)
