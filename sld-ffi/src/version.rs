//! Library version: compile-time macros in the header, run-time string.

use core::ffi::c_char;

use crate::status::{status_name, SldStatus};

/// Major version of the header this library was built with.
pub const SLD_VERSION_MAJOR: u32 = 0;
/// Minor version.
pub const SLD_VERSION_MINOR: u32 = 1;
/// Patch version.
pub const SLD_VERSION_PATCH: u32 = 0;

/// The library's version, `"MAJOR.MINOR.PATCH"` (static; never NULL).
/// Compare with `SLD_VERSION_MAJOR` etc. to detect a header/library mismatch.
#[no_mangle]
pub extern "C" fn sld_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// A short name for `status` (static; never NULL).
#[no_mangle]
pub extern "C" fn sld_status_name(status: SldStatus) -> *const c_char {
    status_name(status).as_ptr().cast()
}

/// The calling thread's last error message: of the most recent failed
/// `sld_*` call on this thread, "" if none. Valid until this thread's next
/// failed call. Never NULL. (In the firmware build, one global message.)
#[no_mangle]
pub extern "C" fn sld_last_error() -> *const c_char {
    crate::guard::last_error()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_macros_match_the_crate_version() {
        let v = format!("{SLD_VERSION_MAJOR}.{SLD_VERSION_MINOR}.{SLD_VERSION_PATCH}");
        assert_eq!(v, env!("CARGO_PKG_VERSION"));
        // SAFETY: static NUL-terminated string.
        let s = unsafe { core::ffi::CStr::from_ptr(sld_version()) };
        assert_eq!(s.to_str().unwrap(), v);
    }
}
