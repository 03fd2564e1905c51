//! COLMAP text sparse-model readers: `cameras.txt`, `images.txt`,
//! `points3D.txt` (the first byte picks the file).
#![no_main]
use libfuzzer_sys::fuzz_target;
use sld_train::data::colmap::{parse_cameras_txt, parse_images_txt, parse_points_txt};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    // The readers take text; a non-UTF-8 file fails in `read_to_string`.
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let p = Path::new("fuzz.txt");
    match which % 3 {
        0 => {
            if let Ok(cams) = parse_cameras_txt(text, p) {
                assert!(cams.values().all(|c| c.width >= 1 && c.height >= 1));
            }
        }
        1 => {
            if let Ok(ims) = parse_images_txt(text, p) {
                assert!(ims.values().all(|i| i.pose.is_valid(1e-2)));
            }
        }
        _ => {
            if let Ok(pts) = parse_points_txt(text, p) {
                assert!(pts.iter().all(|q| q.xyz.iter().all(|v| v.is_finite())));
            }
        }
    }
});
