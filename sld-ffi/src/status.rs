//! [`SldStatus`], the result code of every entry point, and [`Failure`],
//! a status with its message formatted into a fixed buffer (no allocation,
//! also on the error path).

use core::ffi::c_char;
use core::fmt;

/// Result of every `sld_*` call. `SLD_STATUS_OK` is 0; anything else is a
/// failure whose message `sld_last_error()` (and, for calls on a handle,
/// that handle's `*_last_error`) explains.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SldStatus {
    /// Success.
    Ok = 0,
    /// A required pointer argument is NULL.
    NullPointer = 1,
    /// An argument is out of range: a zero or overflowing size, an unknown
    /// enum value, options that are not finite.
    InvalidArgument = 2,
    /// The image is unusable: zero width or height, row stride smaller than
    /// `width × bytes per pixel`, or a size that overflows.
    InvalidImage = 3,
    /// The camera is unusable: focal length not finite and > 0, principal
    /// point or kappa not finite.
    InvalidCamera = 4,
    /// The model bytes are not a valid `.sld` file (truncated, wrong
    /// version, inconsistent graph or shapes).
    InvalidModel = 5,
    /// A file could not be read.
    Io = 6,
    /// A caller-provided output buffer or a solver's capacity is too small;
    /// the message says how much is needed.
    BufferTooSmall = 7,
    /// Input values are NaN or infinite (heatmaps, points, confidences).
    NonFinite = 8,
    /// No pose: too few detections, no consensus, or degenerate geometry.
    /// Not a misuse: the image simply could not be localised.
    NoPose = 9,
    /// Memory for a new handle could not be reserved.
    OutOfMemory = 10,
    /// An internal error (a bug in sld, caught before it crossed into C).
    /// The handle that reported it should be destroyed.
    Panic = 11,
}

impl SldStatus {
    /// The status with numeric code `code`, if sld defines one.
    pub fn from_code(code: u32) -> Option<Self> {
        use SldStatus::*;
        [
            Ok,
            NullPointer,
            InvalidArgument,
            InvalidImage,
            InvalidCamera,
            InvalidModel,
            Io,
            BufferTooSmall,
            NonFinite,
            NoPose,
            OutOfMemory,
            Panic,
        ]
        .into_iter()
        .find(|s| *s as u32 == code)
    }
}

/// Capacity of a message buffer, bytes, including the terminating NUL.
pub(crate) const TEXT_CAP: usize = 256;

/// A NUL-terminated UTF-8 message in a fixed buffer; longer messages are
/// truncated at a character boundary, interior NULs become `?`.
#[derive(Clone)]
pub(crate) struct Text {
    buf: [u8; TEXT_CAP],
    len: usize,
}

impl Text {
    /// The empty message.
    pub(crate) const fn new() -> Self {
        Self {
            buf: [0; TEXT_CAP],
            len: 0,
        }
    }

    /// Replaces the message with `args`.
    pub(crate) fn set(&mut self, args: fmt::Arguments<'_>) {
        self.len = 0;
        self.buf[0] = 0;
        // Formatting into a fixed buffer cannot fail (it truncates).
        let _ = fmt::write(self, args);
    }

    /// The message as a C string, valid while `self` is neither moved nor
    /// changed.
    pub(crate) fn as_ptr(&self) -> *const c_char {
        self.buf.as_ptr().cast()
    }

    /// The message as text.
    #[cfg(any(test, feature = "std"))]
    pub(crate) fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl fmt::Write for Text {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for ch in s.chars() {
            let ch = if ch == '\0' { '?' } else { ch };
            let mut enc = [0u8; 4];
            let bytes = ch.encode_utf8(&mut enc).as_bytes();
            // Keep one byte for the NUL.
            if self.len + bytes.len() > TEXT_CAP - 1 {
                break;
            }
            self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
            self.len += bytes.len();
        }
        self.buf[self.len] = 0;
        Ok(())
    }
}

/// A failed call: its status and message.
pub(crate) struct Failure {
    pub(crate) status: SldStatus,
    pub(crate) text: Text,
}

impl Failure {
    /// A failure with a formatted message.
    pub(crate) fn new(status: SldStatus, args: fmt::Arguments<'_>) -> Self {
        let mut text = Text::new();
        text.set(args);
        Self { status, text }
    }

    /// A NULL-pointer failure naming the argument.
    pub(crate) fn null(argument: &str) -> Self {
        Self::new(SldStatus::NullPointer, format_args!("{argument} is NULL"))
    }
}

/// Builds a [`Failure`]: `fail!(STATUS, "format", args...)`.
macro_rules! fail {
    ($status:ident, $($arg:tt)*) => {
        $crate::status::Failure::new($crate::status::SldStatus::$status, format_args!($($arg)*))
    };
}
pub(crate) use fail;

/// The name of a status as a static C string (never NULL).
pub(crate) fn status_name(status: SldStatus) -> &'static [u8] {
    match status {
        SldStatus::Ok => b"ok\0",
        SldStatus::NullPointer => b"null pointer\0",
        SldStatus::InvalidArgument => b"invalid argument\0",
        SldStatus::InvalidImage => b"invalid image\0",
        SldStatus::InvalidCamera => b"invalid camera\0",
        SldStatus::InvalidModel => b"invalid model\0",
        SldStatus::Io => b"i/o error\0",
        SldStatus::BufferTooSmall => b"buffer too small\0",
        SldStatus::NonFinite => b"non-finite value\0",
        SldStatus::NoPose => b"no pose\0",
        SldStatus::OutOfMemory => b"out of memory\0",
        SldStatus::Panic => b"internal error\0",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_truncate_on_a_char_boundary() {
        let mut t = Text::new();
        let long = "é".repeat(400);
        t.set(format_args!("{long}"));
        assert!(t.as_str().len() < TEXT_CAP);
        assert!(t.as_str().chars().all(|c| c == 'é'));
        t.set(format_args!("a\0b"));
        assert_eq!(t.as_str(), "a?b");
    }
}
