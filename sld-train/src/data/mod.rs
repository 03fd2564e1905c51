//! Scene data on disk: the Indoor6 layout (`indoor6`), whole scene
//! directories with sld's additions (`scene`), COLMAP sparse models (`colmap`).

pub mod colmap;
pub mod indoor6;
pub mod scene;
