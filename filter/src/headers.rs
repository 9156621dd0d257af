//! Decoding the proxy-wasm header map encoding: u32 count, then a (key length, value length)
//! u32 pair per header, then each key and value followed by a NUL byte.

fn u32_at(b: &[u8], at: usize) -> Option<usize> {
    let bytes: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(bytes)).ok()
}

/// Borrowed `(name, value)` pairs; `None` if the encoding is malformed.
pub fn decode(b: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    if b.is_empty() {
        return Some(Vec::new());
    }
    let n = u32_at(b, 0)?;
    // Each header takes at least 10 bytes: a cap on what a malformed count can allocate.
    if n > b.len() / 10 + 1 {
        return None;
    }
    let mut pairs = Vec::with_capacity(n);
    let mut data = 4usize.checked_add(n.checked_mul(8)?)?;
    for i in 0..n {
        let kl = u32_at(b, 4 + i * 8)?;
        let vl = u32_at(b, 8 + i * 8)?;
        let key = b.get(data..data.checked_add(kl)?)?;
        data = data.checked_add(kl)?.checked_add(1)?;
        let value = b.get(data..data.checked_add(vl)?)?;
        data = data.checked_add(vl)?.checked_add(1)?;
        pairs.push((key, value));
    }
    Some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::encode_pairs;

    #[test]
    fn round_trip() {
        let pairs = vec![
            (":method".to_string(), "POST".to_string()),
            ("content-type".to_string(), "application/json".to_string()),
            ("x-empty".to_string(), String::new()),
        ];
        let enc = encode_pairs(&pairs);
        let dec = decode(&enc).unwrap();
        assert_eq!(dec.len(), 3);
        assert_eq!(dec[0], (b":method".as_slice(), b"POST".as_slice()));
        assert_eq!(dec[2], (b"x-empty".as_slice(), b"".as_slice()));
        assert_eq!(decode(&[]), Some(vec![]));
        assert_eq!(decode(&enc[..enc.len() - 3]), None);
        assert_eq!(decode(&[255, 255, 255, 255]), None);
    }
}
