//! Bytes read as UTF-8 with every invalid sequence replaced by U+FFFD, as the standard
//! library's `String::from_utf8_lossy` reads them, on top of `str::from_utf8` (which the
//! module links anyway): the standard one brings its own UTF-8 chunker, a kilobyte of
//! module for text read only off the hot path (query strings, percent-decoded URIs,
//! response media types).

use std::borrow::Cow;

/// `bytes` as text; borrowed when it is valid UTF-8.
pub(crate) fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    let mut out = String::new();
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) if rest.len() == bytes.len() => return Cow::Borrowed(s),
            Ok(s) => {
                out.push_str(s);
                return Cow::Owned(out);
            }
            Err(e) => {
                let (valid, after) = rest
                    .split_at_checked(e.valid_up_to())
                    .unwrap_or((rest, &[]));
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                out.push(char::REPLACEMENT_CHARACTER);
                // No length: the bytes end inside a sequence, which is one replacement.
                rest = e
                    .error_len()
                    .and_then(|n| after.get(n..))
                    .unwrap_or_default();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_as_from_utf8_lossy_reads() {
        let cases: [&[u8]; 12] = [
            b"",
            b"plain",
            "caf\u{e9} \u{1f600}".as_bytes(),
            b"\xff",
            b"a\xffb",
            b"\xe2\x82",
            b"a\xe2\x82",
            b"\xe2\x82b\xe2\x82",
            b"\xf0\x9f\x98",
            b"\xed\xa0\x80x",
            b"\xc0\xafz\xf4\x90\x80\x80",
            b"\x80\x80\x80ok\xfe",
        ];
        for case in cases {
            assert_eq!(lossy(case), String::from_utf8_lossy(case), "{case:?}");
        }
        // Every two-byte input, so that each kind of broken sequence meets each ending.
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let case = [a, b, b'x', a];
                assert_eq!(lossy(&case), String::from_utf8_lossy(&case), "{case:?}");
            }
        }
        assert!(matches!(lossy(b"valid"), Cow::Borrowed("valid")));
    }
}
