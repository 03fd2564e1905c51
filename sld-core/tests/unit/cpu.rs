//! Tests of `nn::cpu`.

use sld_core::nn::cpu::Level;

#[test]
fn levels_parse_and_order() {
    assert_eq!(Level::parse("avx2"), Some(Level::Avx2));
    assert_eq!(Level::parse(" avx512\n"), Some(Level::Avx512));
    assert_eq!(Level::parse("sse"), None);
    assert!(Level::Portable < Level::Avx2 && Level::Avx2 < Level::Avx512);
}
