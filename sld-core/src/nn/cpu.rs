//! Which kernel level the CPU runs: detected once, optionally capped by
//! the `SLD_CPU_LEVEL` environment variable (`portable`, `avx2`,
//! `avx512`), so one AVX-512 host can measure the AVX2 kernels too
//! (BENCHMARKS.md). Without `std` (no detection) the portable kernels run.

/// A kernel level, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Plain Rust the compiler vectorises for the target's baseline (SSE2
    /// on x86-64, NEON with FMA on aarch64).
    Portable,
    /// x86-64 AVX2 + FMA.
    Avx2,
    /// x86-64 AVX-512F.
    Avx512,
}

impl Level {
    /// Parses `portable`, `avx2` or `avx512`.
    pub fn parse(s: &str) -> Option<Level> {
        match s.trim() {
            "portable" => Some(Level::Portable),
            "avx2" => Some(Level::Avx2),
            "avx512" => Some(Level::Avx512),
            _ => None,
        }
    }
}

/// The level the kernels run at: the best the CPU has, at most
/// `SLD_CPU_LEVEL` when set (an unknown value is ignored). Detected on
/// first use, then cached.
#[cfg(feature = "std")]
pub fn level() -> Level {
    static LEVEL: std::sync::OnceLock<Level> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        let cap = std::env::var("SLD_CPU_LEVEL")
            .ok()
            .and_then(|v| Level::parse(&v))
            .unwrap_or(Level::Avx512);
        detected().min(cap)
    })
}

/// The portable kernels (no detection without `std`).
#[cfg(not(feature = "std"))]
pub fn level() -> Level {
    Level::Portable
}

#[cfg(feature = "std")]
fn detected() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            return Level::Avx512;
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            return Level::Avx2;
        }
    }
    Level::Portable
}
