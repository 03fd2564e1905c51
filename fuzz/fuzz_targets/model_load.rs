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
        assert!(m.landmarks().iter().flatten().all(|v| v.is_finite()));
        let _ = m.weights().len();
    }
});
