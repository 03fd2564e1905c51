//! Indoor6 text files: `NAME.intrinsics.txt`, `NAME.pose.txt`,
//! `landmarks-N.txt`, `visibility-N.txt` (the first byte picks the file).
#![no_main]
use libfuzzer_sys::fuzz_target;
use sld_train::data::indoor6::{parse_intrinsics, parse_landmarks, parse_pose, parse_visibility};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let p = Path::new("fuzz.txt");
    match which % 4 {
        0 => {
            if let Ok(i) = parse_intrinsics(text, p) {
                assert!(i.camera.validate().is_ok());
            }
        }
        1 => {
            if let Ok(pose) = parse_pose(text, p) {
                assert!(pose.is_valid(1e-2));
            }
        }
        2 => {
            if let Ok(pts) = parse_landmarks(text, p) {
                assert!(pts.iter().flatten().all(|v| v.is_finite()));
            }
        }
        _ => {
            if let Ok(v) = parse_visibility(text, p) {
                assert!(v.rows.iter().all(|r| r.len() == v.images));
            }
        }
    }
});
