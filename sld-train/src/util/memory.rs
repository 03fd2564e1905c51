//! What a job will need against what the machine has: long jobs check
//! before they allocate, so an absurd size is an error line, not an abort
//! ("memory allocation of … bytes failed") after minutes of work.

use anyhow::{bail, Result};

/// Memory the system can still give this process, bytes (`MemAvailable` of
/// `/proc/meminfo`); `None` where that is unknown (not Linux).
pub fn available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Fails when `bytes` (a lower bound of what `what` will allocate) exceeds
/// the memory available; `fix` says what to change. Does nothing where the
/// available memory is unknown.
pub fn ensure_fits(what: &str, bytes: u64, fix: &str) -> Result<()> {
    check(what, bytes, available_bytes(), fix)
}

fn check(what: &str, bytes: u64, available: Option<u64>, fix: &str) -> Result<()> {
    if let Some(avail) = available {
        if bytes > avail {
            bail!(
                "{what} needs at least {:.1} GB of memory, and {:.1} GB are available: {fix}",
                bytes as f64 / 1e9,
                avail as f64 / 1e9
            );
        }
    }
    Ok(())
}

/// `a · b · …` in `u64`, saturating (a size that overflows is "too much").
pub fn product(factors: &[usize]) -> u64 {
    factors.iter().fold(1u64, |acc, &f| acc.saturating_mul(f as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_compares_against_what_is_available() {
        assert!(check("x", 10, Some(100), "").is_ok());
        assert!(check("x", 10, None, "").is_ok());
        let e = check("training", 3_000_000_000, Some(1_000_000_000), "lower --batch").unwrap_err();
        assert_eq!(
            e.to_string(),
            "training needs at least 3.0 GB of memory, and 1.0 GB are available: lower --batch"
        );
        assert_eq!(product(&[65536, 65536, 4, usize::MAX]), u64::MAX);
        #[cfg(target_os = "linux")]
        assert!(available_bytes().is_some_and(|b| b > 0));
    }
}
