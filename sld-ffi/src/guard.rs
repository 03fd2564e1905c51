//! Every entry point runs its body through [`call`]: a failure's message is
//! stored as the calling thread's last error, and (with `std`) a panic is
//! caught and turned into `SLD_STATUS_PANIC` before it can unwind into C.
//!
//! Without `std` there is no unwinding (the firmware build aborts on
//! panic) and no thread-local storage: the last error is one global buffer,
//! which suits the single-threaded firmware that build is for.

use core::ffi::c_char;

use crate::status::{Failure, SldStatus, Text};

#[cfg(feature = "std")]
mod last {
    use super::*;
    use std::cell::RefCell;

    std::thread_local! {
        static LAST: RefCell<Text> = const { RefCell::new(Text::new()) };
    }

    pub(crate) fn set(text: &Text) {
        // `try_with`: a call made while the thread is being torn down
        // (from a TLS destructor) keeps its status and drops the message.
        let _ = LAST.try_with(|t| {
            if let Ok(mut t) = t.try_borrow_mut() {
                *t = text.clone();
            }
        });
    }

    pub(crate) fn get() -> *const c_char {
        // The thread-local lives as long as the thread, so the pointer stays
        // valid until this thread's next failing call rewrites the text.
        LAST.try_with(|t| t.try_borrow().map(|t| t.as_ptr()).ok())
            .ok()
            .flatten()
            .unwrap_or(c"".as_ptr())
    }
}

#[cfg(not(feature = "std"))]
mod last {
    use super::*;
    use core::cell::UnsafeCell;
    use core::sync::atomic::{AtomicBool, Ordering};

    struct Global {
        busy: AtomicBool,
        text: UnsafeCell<Text>,
    }

    // SAFETY: writers take `busy` with an atomic swap, so at most one
    // writes at a time; readers only receive a pointer (documented as
    // valid until the next failing call, which on the single-threaded
    // targets of this build is never concurrent).
    unsafe impl Sync for Global {}

    static LAST: Global = Global {
        busy: AtomicBool::new(false),
        text: UnsafeCell::new(Text::new()),
    };

    pub(crate) fn set(text: &Text) {
        if !LAST.busy.swap(true, Ordering::Acquire) {
            // SAFETY: `busy` was false and is now ours: no other writer.
            unsafe { *LAST.text.get() = text.clone() };
            LAST.busy.store(false, Ordering::Release);
        }
    }

    pub(crate) fn get() -> *const c_char {
        // SAFETY: only a pointer is formed, no reference outlives this call.
        unsafe { (*LAST.text.get()).as_ptr() }
    }
}

/// The calling thread's last error message (empty if none yet).
pub(crate) fn last_error() -> *const c_char {
    last::get()
}

/// Records `failure` as the thread's last error and returns its status.
pub(crate) fn report(failure: &Failure) -> SldStatus {
    last::set(&failure.text);
    failure.status
}

/// Runs an entry point's body: `Ok` → `SLD_STATUS_OK`; a failure or a
/// panic → its status, with the message stored as the thread's last error.
pub(crate) fn call(body: impl FnOnce() -> Result<(), Failure>) -> SldStatus {
    match catch(body) {
        Ok(()) => SldStatus::Ok,
        Err(f) => report(&f),
    }
}

/// A handle that keeps the message of its own last failure.
pub(crate) trait ErrorSlot {
    /// The handle's message buffer.
    fn error_slot(&mut self) -> &mut Text;
}

/// [`call`] on a handle: a NULL handle fails naming `name`; any failure,
/// panics included, is also recorded as the handle's last error.
pub(crate) fn with_handle<H: ErrorSlot>(
    handle: *mut H,
    name: &str,
    body: impl FnOnce(&mut H) -> Result<(), Failure>,
) -> SldStatus {
    let status = call(|| {
        // SAFETY: a non-null handle is valid and used by one thread at a
        // time (the documented contract of every handle).
        let h = unsafe { handle.as_mut() }.ok_or_else(|| Failure::null(name))?;
        body(&mut *h).inspect_err(|f| *h.error_slot() = f.text.clone())
    });
    if status == SldStatus::Panic && !handle.is_null() {
        // The body panicked before it could record the message.
        // SAFETY: as above; the body's borrow has ended.
        unsafe {
            (*handle)
                .error_slot()
                .set(format_args!("internal error (see sld_last_error)"))
        };
    }
    status
}

/// Runs `body`, turning a panic into a [`Failure`] with status `Panic`.
#[cfg(feature = "std")]
pub(crate) fn catch<T>(body: impl FnOnce() -> Result<T, Failure>) -> Result<T, Failure> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(no message)");
            Err(Failure::new(
                SldStatus::Panic,
                format_args!("internal error (please report): {msg}"),
            ))
        }
    }
}

/// Without `std` a panic aborts (see `firmware`), so there is nothing to catch.
#[cfg(not(feature = "std"))]
pub(crate) fn catch<T>(body: impl FnOnce() -> Result<T, Failure>) -> Result<T, Failure> {
    body()
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::status::fail;
    use std::ffi::CStr;

    fn last_text() -> String {
        // SAFETY: `last_error` returns a NUL-terminated buffer.
        unsafe { CStr::from_ptr(last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_becomes_a_status_and_a_message() {
        let st = call(|| -> Result<(), Failure> { panic!("boom {}", 42) });
        assert_eq!(st, SldStatus::Panic);
        assert!(last_text().contains("boom 42"), "{}", last_text());
    }

    #[test]
    fn failures_set_the_thread_local_message_only_on_their_thread() {
        let st = call(|| Err(fail!(InvalidArgument, "width {} is zero", 0)));
        assert_eq!(st, SldStatus::InvalidArgument);
        assert_eq!(last_text(), "width 0 is zero");
        let other = std::thread::spawn(last_text).join().unwrap();
        assert_eq!(other, "");
        // Success leaves the last message in place (errno-like).
        assert_eq!(call(|| Ok(())), SldStatus::Ok);
        assert_eq!(last_text(), "width 0 is zero");
    }
}
