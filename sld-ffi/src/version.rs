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

/// A short name for a status code (static; never NULL). Takes the code as
/// an integer, since C may pass any value: codes sld does not define give
/// "unknown status".
#[no_mangle]
pub extern "C" fn sld_status_name(status: u32) -> *const c_char {
    SldStatus::from_code(status)
        .map_or(&b"unknown status\0"[..], status_name)
        .as_ptr()
        .cast()
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

    /// Every defined code has its name; any other integer, as C may pass
    /// (12, 13, 1000, u32::MAX), gets "unknown status", never a wild read.
    #[test]
    fn status_names_accept_any_integer() {
        let name = |c: u32| {
            // SAFETY: sld_status_name returns a static NUL-terminated string.
            unsafe { core::ffi::CStr::from_ptr(sld_status_name(c)) }
                .to_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(name(SldStatus::Ok as u32), "ok");
        assert_eq!(name(SldStatus::NoPose as u32), "no pose");
        assert_eq!(name(SldStatus::Panic as u32), "internal error");
        for c in 0..=11 {
            assert_eq!(SldStatus::from_code(c).map(|s| s as u32), Some(c));
            assert_ne!(name(c), "unknown status");
        }
        for c in [12, 13, 1000, u32::MAX] {
            assert_eq!(SldStatus::from_code(c), None);
            assert_eq!(name(c), "unknown status");
        }
    }
}
