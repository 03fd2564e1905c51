//! `.sld` model loading: safetensors header, metadata JSON graph, shapes,
//! weight ranges, execution plan.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sld_core::model::Model;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Model::load(data) {
        let p = m.plan();
        assert!(p.memory_bytes() <= 8 * sld_core::model::plan::MAX_ELEMS);
        assert_eq!(m.landmarks().len(), m.info().landmarks as usize);
        let bound = sld_core::model::MAX_LANDMARK_M as f64;
        assert!(m.landmarks().iter().flatten().all(|v| v.abs() <= bound));
        // Every weight a step reads is finite (checked at load).
        let w = m.weights();
        for step in &p.steps {
            if let sld_core::model::plan::Step::Conv(c) = step {
                let r = &c.weight;
                assert!(w[r.start..r.start + r.len].iter().all(|v| v.is_finite()));
                if let Some(b) = &c.bias {
                    assert!(w[b.start..b.start + b.len].iter().all(|v| v.is_finite()));
                }
            }
        }
    }
});
