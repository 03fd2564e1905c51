//! COLMAP binary sparse-model readers: `cameras.bin`, `images.bin`,
//! `points3D.bin` (the first byte picks the file).
#![no_main]
use libfuzzer_sys::fuzz_target;
use sld_train::data::colmap::{parse_cameras_bin, parse_images_bin, parse_points_bin};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let p = Path::new("fuzz.bin");
    match which % 3 {
        0 => {
            if let Ok(cams) = parse_cameras_bin(rest, p) {
                assert!(cams.values().all(|c| c.width >= 1 && c.height >= 1));
            }
        }
        1 => {
            if let Ok(ims) = parse_images_bin(rest, p) {
                assert!(ims.values().all(|i| i.pose.is_valid(1e-2)));
            }
        }
        _ => {
            if let Ok(pts) = parse_points_bin(rest, p) {
                assert!(pts.iter().all(|q| q.xyz.iter().all(|v| v.is_finite())));
            }
        }
    }
});
