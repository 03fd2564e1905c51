//! `Localizer` construction and one `localize` call on fuzzed model bytes,
//! with a fixed image and camera. Models whose activation memory exceeds
//! 64 MiB are loaded but not run (the fuzzer's memory limit, not the
//! library's; the library caps it at 1 GiB).
#![no_main]
use libfuzzer_sys::fuzz_target;
use sld_core::{Camera, Image, Localizer, PixelFormat};

fuzz_target!(|data: &[u8]| {
    let Ok(m) = sld_core::model::Model::load(data) else {
        return;
    };
    if m.plan().memory_bytes() > 64 << 20 {
        return;
    }
    let mut loc = Localizer::new(data).expect("a model that loads makes a localizer");
    let kit = sld_fuzz::kit();
    let image = Image::new(96, 64, 96 * 3, PixelFormat::Rgb8, &kit.rgb).expect("kit image");
    let camera = Camera::pinhole(96, 64, 80.0, 47.5, 31.5).expect("camera");
    if let Ok(l) = loc.localize(&image, &camera) {
        assert!(l.pose.is_valid(1e-6), "localize returned an invalid pose");
    }
});
