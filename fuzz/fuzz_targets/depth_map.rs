//! Depth-map readers: `.npy`, `.pfm`, 16-bit `.png`, COLMAP dense `.bin`
//! (the first byte picks the format and whether zeros are kept).
#![no_main]
use libfuzzer_sys::fuzz_target;
use sld_train::depth::io::parse_map;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let name = ["d.npy", "d.pfm", "d.png", "d.bin"][(which % 4) as usize];
    if let Ok(m) = parse_map(rest, Path::new(name), which & 4 != 0) {
        assert_eq!(m.data.len(), m.width * m.height);
        assert!(m.width >= 1 && m.height >= 1);
        assert!(m.data.iter().all(|v| v.is_nan() || v.is_finite()));
    }
});
