//! Third-party calls that may panic (cudarc panics when it cannot load a
//! CUDA or NCCL library), guarded: [`quietly`] runs one with the panic
//! caught and its message silenced, [`message`] gives the text for the
//! error that replaces it.

/// The text a panic carried (`panic!("…")` gives `&str` or `String`);
/// empty for any other payload.
pub fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// Runs `f`, turning a panic inside it into `Err(message)`. The panic
/// hook is silenced meanwhile, so nothing is printed for it. (The hook is
/// process-wide: a panic on another thread meanwhile is silenced too.)
pub fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    r.map_err(|p| message(&*p))
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_payload_kinds_and_others() {
        let p = std::panic::catch_unwind(|| panic!("plain")).unwrap_err();
        assert_eq!(super::message(&*p), "plain");
        let p = std::panic::catch_unwind(|| panic!("formatted {}", 7)).unwrap_err();
        assert_eq!(super::message(&*p), "formatted 7");
        let p = std::panic::catch_unwind(|| std::panic::panic_any(3u8)).unwrap_err();
        assert_eq!(super::message(&*p), "");
    }

    #[test]
    fn quietly_returns_the_value_or_the_panics_text() {
        assert_eq!(super::quietly(|| 5), Ok(5));
        assert_eq!(
            super::quietly(|| -> u8 { panic!("no libnccl") }),
            Err("no libnccl".into())
        );
    }
}
