//! The message of a caught panic (a third-party call guarded with
//! `catch_unwind`), for the error that replaces it.

/// The text a panic carried (`panic!("…")` gives `&str` or `String`);
/// empty for any other payload.
pub fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
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
}
