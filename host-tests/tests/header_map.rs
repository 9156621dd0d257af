//! The header-map wire format, against golden encodings taken from the Rust SDK 0.2.5's
//! own encoder (`hostcalls::utils::tests::SERIALIZED_MAP`), not the spec's example.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use host_tests::headers::{decode_pairs, encode_pairs, join_path, split_path};
use host_tests::Headers;

#[rustfmt::skip]
const SDK_SERIALIZED_MAP: &[u8] = &[
    4, 0, 0, 0,
    7, 0, 0, 0, 3, 0, 0, 0,
    5, 0, 0, 0, 8, 0, 0, 0,
    10, 0, 0, 0, 11, 0, 0, 0,
    10, 0, 0, 0, 10, 0, 0, 0,
    58, 109, 101, 116, 104, 111, 100, 0,
    71, 69, 84, 0,
    58, 112, 97, 116, 104, 0,
    47, 98, 121, 116, 101, 115, 47, 49, 0,
    58, 97, 117, 116, 104, 111, 114, 105, 116, 121, 0,
    104, 116, 116, 112, 98, 105, 110, 46, 111, 114, 103, 0,
    80, 111, 119, 101, 114, 101, 100, 45, 66, 121, 0,
    112, 114, 111, 120, 121, 45, 119, 97, 115, 109, 0,
];

const SDK_MAP: &[(&str, &str)] = &[
    (":method", "GET"),
    (":path", "/bytes/1"),
    (":authority", "httpbin.org"),
    ("Powered-By", "proxy-wasm"),
];

#[test]
fn encodes_exactly_like_the_sdk() {
    let encoded = encode_pairs(SDK_MAP.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())));
    assert_eq!(encoded, SDK_SERIALIZED_MAP);
}

#[test]
fn decodes_the_sdk_encoding() {
    let pairs = decode_pairs(SDK_SERIALIZED_MAP).unwrap();
    let expected: Vec<(Vec<u8>, Vec<u8>)> = SDK_MAP
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    assert_eq!(pairs, expected);
}

#[test]
fn empty_maps_encode_as_a_zero_count_and_decode_from_nothing() {
    assert_eq!(Headers::new().encode(), [0, 0, 0, 0]);
    assert!(decode_pairs(&[]).unwrap().is_empty());
    assert!(decode_pairs(&[0, 0, 0, 0]).unwrap().is_empty());
}

#[test]
fn every_byte_value_survives_a_round_trip() {
    for byte in 0..=255u8 {
        let encoded = encode_pairs([(b"c".as_slice(), [byte].as_slice())]);
        assert_eq!(
            encoded,
            [1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 99, 0, byte, 0]
        );
        assert_eq!(
            decode_pairs(&encoded).unwrap(),
            vec![(b"c".to_vec(), vec![byte])]
        );
    }
}

#[test]
fn malformed_maps_are_refused() {
    // Count says 2, table has room for 1.
    assert!(decode_pairs(&[2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]).is_err());
    // Missing NUL terminator.
    assert!(decode_pairs(&[1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 99, 1, 100, 0]).is_err());
    // Trailing garbage.
    assert!(decode_pairs(&[1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 99, 0, 100, 0, 7]).is_err());
}

#[test]
fn headers_lowercase_keys_and_return_the_first_of_repeated_values() {
    let mut headers = Headers::from_pairs([("X-A", "1"), ("x-a", "2"), ("b", "3")]);
    assert_eq!(headers.get("x-a"), Some("1"));
    assert_eq!(headers.get_all("X-A"), vec!["1", "2"]);
    headers.replace("x-a", "9");
    assert_eq!(
        headers.pairs(),
        vec![("x-a".into(), "9".into()), ("b".into(), "3".into())]
    );
    headers.remove("B");
    assert_eq!(headers.len(), 1);
    let round = Headers::decode(&headers.encode()).unwrap();
    assert_eq!(round, headers);
}

#[test]
fn property_paths_join_with_nul() {
    assert_eq!(join_path(&["source", "address"]), b"source\0address");
    assert_eq!(split_path(b"source\0address"), vec!["source", "address"]);
    assert!(split_path(b"").is_empty());
}
