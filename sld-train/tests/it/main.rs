//! sld-train's integration tests, one module per surface, in one test
//! binary: one link instead of one per file (each links Candle), and the
//! modules' tests share the cores instead of running binary after binary.
//! Every module's doc says what it checks.

mod bad_input_matrix;
mod colmap;
mod common;
mod crash_resume;
mod depth;
mod device;
mod imagenet;
mod indoor6;
mod localize_cli;
mod localizer;
mod localizes;
mod model_file;
mod parity;
mod pnp_cli;
mod query_session;
mod synth;
mod train;
