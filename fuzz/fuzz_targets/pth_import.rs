//! `sld weights import`: the legacy (pre-zip) PyTorch checkpoint reader
//! (magic number, pickles through Candle's VM, storage keys, raw storages,
//! strided gather) and the mapping onto our Lite0 names with BN folding.
//!
//! Candle's pickle VM (third-party) can panic on malformed input; the
//! reader catches that and returns an error. libFuzzer aborts on *any*
//! panic, caught or not, so this target's panic hook lets panics raised
//! inside `candle-core/src/pickle.rs` unwind to that catch; every other
//! panic still aborts and is reported.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::Once;

fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_candle_pickle = info
                .location()
                .is_some_and(|l| l.file().contains("candle-core") && l.file().ends_with("pickle.rs"));
            if !in_candle_pickle {
                fuzzer_hook(info);
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    install_hook();
    if let Ok(sd) = sld_train::io::pth::parse_legacy_pth(data, Path::new("w.pth")) {
        for (shape, v) in sd.values() {
            assert_eq!(shape.iter().product::<usize>(), v.len());
        }
        let _ = sld_train::imagenet::lite0_tensors(&sd);
    }
});
