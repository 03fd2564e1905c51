//! Tests of `model::container`.

use sld_core::model::container::{declared_len, header_len, MAX_HEADER_BYTES};
use sld_core::model::ModelError;

fn file(header: &str, data: usize) -> Vec<u8> {
    let mut f = (header.len() as u64).to_le_bytes().to_vec();
    f.extend_from_slice(header.as_bytes());
    f.resize(f.len() + data, 0);
    f
}

#[test]
fn declared_size_is_header_plus_last_offset() {
    let h = r#"{"__metadata__":{"a":"b"},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#;
    let f = file(h, 12);
    assert_eq!(declared_len(&f), Ok(f.len()));
    assert_eq!(declared_len(&f[..8 + h.len()]), Ok(f.len()));
    assert!(matches!(declared_len(&f[..20]), Err(ModelError::Container(_))));
}

#[test]
fn absurd_headers_are_rejected_before_reading_on() {
    for first in [0u64, 1, MAX_HEADER_BYTES as u64 + 1, u64::MAX] {
        assert!(header_len(&first.to_le_bytes()).is_err(), "{first}");
    }
    assert!(header_len(&[1, 2, 3]).is_err());
    assert!(declared_len(&file("[1,2]", 0)).is_err());
    assert!(declared_len(&file(r#"{"x":{"data_offsets":"no"}}"#, 0)).is_err());
    assert!(declared_len(&file(r#"{"x":{"data_offsets":[0,18446744073709551615]}}"#, 0)).is_err());
}
