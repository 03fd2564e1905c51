//! The tests of sld-core's modules, outside the library: `cargo test`
//! then compiles the library once, not a second time as a unit-test
//! binary with every kernel in it (`sld_core::testing` says why; four
//! minutes of one core at the end of CI's test build). What a test needs
//! from inside the crate, `sld_core::testing` exposes, hidden from the
//! docs.

mod blocked;
mod container;
mod conv;
mod cpu;
mod exp;
mod gate;
mod image;
#[cfg(feature = "std")]
mod pool;
mod refine;
mod resize;
mod rng;
mod winograd;
