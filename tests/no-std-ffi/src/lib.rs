//! Re-exports the C ABI of `sld-ffi` built without `std`: the static
//! library this crate produces holds every `sld_*` symbol of `sld.h` except
//! `sld_localizer_new_from_file`.
#![no_std]

pub use sld::*;

/// Host builds only: the precompiled `core` of a hosted target carries
/// unwind tables that name `rust_eh_personality`. With `panic = "abort"`
/// nothing ever unwinds, so it is never called; bare-metal targets (whose
/// `core` is built for abort) do not need it.
#[cfg(not(target_os = "none"))]
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}
