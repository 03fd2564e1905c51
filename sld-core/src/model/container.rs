//! The safetensors framing of a `.sld` file, read before anything else: an
//! 8-byte little-endian header length `n`, `n` bytes of JSON header, then
//! the data section, whose size the header's `data_offsets` declare. File
//! loaders read these first, so they can check the declared size against
//! the file and a limit before reading (or allocating for) the rest.

use alloc::format;
use alloc::string::ToString;

use super::ModelError;

/// Largest header accepted, bytes (safetensors' own limit).
pub const MAX_HEADER_BYTES: usize = 100_000_000;

/// Largest model a file loader reads, bytes (1 GiB; sld's models are a few
/// MB).
pub const MAX_MODEL_BYTES: u64 = 1 << 30;

/// The header length `n` from a file's first 8 bytes: `8 + n` bytes hold
/// the whole header.
pub fn header_len(first8: &[u8]) -> Result<usize, ModelError> {
    let Some(b) = first8.get(..8) else {
        return Err(ModelError::Container(format!(
            "{} bytes: too short for a safetensors header (8 bytes of length first)",
            first8.len()
        )));
    };
    let mut le = [0u8; 8];
    le.copy_from_slice(b);
    let n = u64::from_le_bytes(le);
    if n < 2 || n > MAX_HEADER_BYTES as u64 {
        return Err(ModelError::Container(format!(
            "header length {n} is not in [2, {MAX_HEADER_BYTES}]: not a safetensors file"
        )));
    }
    Ok(n as usize)
}

/// The whole file size the header declares (`8 + n + data bytes`), from a
/// prefix holding at least the header ([`header_len`]` + 8` bytes).
pub fn declared_len(prefix: &[u8]) -> Result<usize, ModelError> {
    let n = header_len(prefix)?;
    let Some(header) = prefix.get(8..8 + n) else {
        return Err(ModelError::Container(format!(
            "{} bytes: the header alone needs {}",
            prefix.len(),
            8 + n
        )));
    };
    let json: serde_json::Value = serde_json::from_slice(header)
        .map_err(|e| ModelError::Container(format!("header is not JSON: {e}")))?;
    let Some(entries) = json.as_object() else {
        return Err(ModelError::Container("header is not a JSON object".to_string()));
    };
    let mut end = 0u64;
    for (name, v) in entries {
        if name == "__metadata__" {
            continue;
        }
        let off = v.get("data_offsets").and_then(|o| o.as_array());
        let last = off.and_then(|o| o.get(1)).and_then(|e| e.as_u64());
        let Some(e) = last else {
            return Err(ModelError::Container(format!(
                "tensor '{name}' has no data_offsets"
            )));
        };
        end = end.max(e);
    }
    usize::try_from(end)
        .ok()
        .and_then(|e| e.checked_add(8 + n))
        .ok_or_else(|| ModelError::Container(format!("declared data size {end} overflows")))
}
