//! Scene data on disk: the Indoor6 layout (`indoor6`) and whole scene
//! directories with sld's additions (`scene`).

pub mod indoor6;
pub mod scene;
