//! Scene data on disk: the Indoor6 layout (`indoor6`).

pub mod indoor6;
