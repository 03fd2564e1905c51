//! Heatmap decoding on arbitrary floats: NaN, ±inf, denormals, all-equal
//! maps, any shape, any options. The floats are the input's raw bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sld_core::heatmap::{decode, DecodeOptions, Detection, HeatmapShape, Refinement};
use sld_fuzz::Cursor;

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let shape = HeatmapShape {
        landmarks: c.u8() as usize,
        height: c.u8() as usize,
        width: c.u8() as usize,
    };
    let refinement = match c.u8() % 4 {
        0 => Refinement::None,
        1 => Refinement::WeightedMean { radius: c.u8() },
        2 => Refinement::Parabola,
        _ => Refinement::GaussianFit,
    };
    let opts = DecodeOptions {
        threshold: c.f32(),
        refinement,
        stride: c.f32(),
        offset: c.f32(),
    };
    let fill = c.u8();
    let raw = c.rest();
    // fill = 0: the floats as given (the length usually mismatches the
    // shape); otherwise the shape's length, cycling through the floats or
    // all equal when there are none.
    let floats: Vec<f32> = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let maps: Vec<f32> = match (fill, shape.len()) {
        (0, _) | (_, None) => floats,
        (_, Some(n)) if n <= 1 << 20 => {
            if floats.is_empty() {
                vec![fill as f32 / 255.0; n]
            } else {
                floats.iter().copied().cycle().take(n).collect()
            }
        }
        _ => return,
    };
    let mut out = vec![Detection::default(); shape.landmarks];
    if let Ok(k) = decode(&maps, shape, &opts, &mut out) {
        assert!(k <= shape.landmarks);
        for d in &out[..k] {
            assert!(d.u.is_finite() && d.v.is_finite() && d.confidence.is_finite());
            assert!((d.landmark as usize) < shape.landmarks);
        }
    }
    // Presence of a logit map: a probability, or NaN exactly when a NaN is in.
    let p = sld_core::heatmap::presence(&maps);
    if maps.iter().any(|v| v.is_nan()) {
        assert!(p.is_nan());
    } else {
        assert!((0.0..=1.0).contains(&p), "presence {p}");
    }
});
