//! Fault-injection points for the crash-safety tests (RELIABILITY.md).
//!
//! Long-running work calls [`point`] at named moments: `buffer` (each image
//! of the head-training feature buffer), `step` (each optimiser step) and
//! `checkpoint` (half-way through writing a checkpoint's temporary file).
//! With `SLD_TRACE_PHASES=1` each point prints `sld-phase: NAME` to stderr;
//! with `SLD_PAUSE_PHASE=NAME` it also sleeps `SLD_PAUSE_MS` (default 200)
//! there, so a test can SIGKILL the process at exactly that moment. Without
//! the variables a point costs one cached check.

use std::sync::OnceLock;
use std::time::Duration;

struct Settings {
    trace: bool,
    pause: Option<(String, Duration)>,
}

fn settings() -> &'static Settings {
    static S: OnceLock<Settings> = OnceLock::new();
    S.get_or_init(|| Settings {
        trace: std::env::var_os("SLD_TRACE_PHASES").is_some(),
        pause: std::env::var("SLD_PAUSE_PHASE").ok().map(|p| {
            let ms = std::env::var("SLD_PAUSE_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(200);
            (p, Duration::from_millis(ms))
        }),
    })
}

/// Marks the moment `name` (see the module docs).
pub fn point(name: &str) {
    let s = settings();
    if s.trace {
        eprintln!("sld-phase: {name}");
    }
    if let Some((p, d)) = &s.pause {
        if p == name {
            std::thread::sleep(*d);
        }
    }
}
