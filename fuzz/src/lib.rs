//! Helpers shared by the fuzz targets: a cursor that turns fuzzer bytes into
//! header fields, and the known-answer beacon kit (a real model + image).

use std::sync::OnceLock;

/// Reads fields off the front of the fuzzer's bytes; exhausted input reads
/// as zeros so that every input is a valid case.
pub struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// A cursor over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }
    /// The next `N` bytes (zero-padded).
    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        let n = N.min(self.data.len());
        b[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        b
    }
    /// One byte.
    pub fn u8(&mut self) -> u8 {
        self.bytes::<1>()[0]
    }
    /// A little-endian u16.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.bytes())
    }
    /// A little-endian u32.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.bytes())
    }
    /// A little-endian u64.
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.bytes())
    }
    /// Any f32 bit pattern (NaN, ±inf, denormals included).
    pub fn f32(&mut self) -> f32 {
        f32::from_le_bytes(self.bytes())
    }
    /// Any f64 bit pattern.
    pub fn f64(&mut self) -> f64 {
        f64::from_le_bytes(self.bytes())
    }
    /// What is left.
    pub fn rest(self) -> &'a [u8] {
        self.data
    }
}

/// The beacon kit: a hand-weighted `.sld` model, an image rendered from a
/// known pose, and its camera (built once per process).
pub fn kit() -> &'static sld_train::beacon::BeaconKit {
    static KIT: OnceLock<sld_train::beacon::BeaconKit> = OnceLock::new();
    KIT.get_or_init(|| sld_train::beacon::beacon_kit(96, 64, 5, 1).expect("beacon kit"))
}
