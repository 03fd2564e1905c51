//! Networks in Candle that map 1:1 onto the `.sld` graph ops.

pub mod bias;
pub mod builder;
pub mod graph;
pub mod unfold;
