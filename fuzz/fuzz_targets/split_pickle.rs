//! The Indoor6 split file `train_test_val.pkl` (a Python pickle).
#![no_main]
use libfuzzer_sys::fuzz_target;
use sld_train::data::indoor6::parse_split;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = parse_split(data, Path::new("train_test_val.pkl")) {
        assert_eq!(s.train.len(), s.train_idx.len());
        assert_eq!(s.val.len(), s.val_idx.len());
        assert_eq!(s.test.len(), s.test_idx.len());
    }
});
