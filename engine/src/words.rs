//! Bytes read as machine words, for code that compares or mixes eight bytes at a time.

/// The first `b.len()` (at most 8) bytes of `b` as a little-endian word, the rest zero.
// Inlined: its callers run it per word on the request path, and at opt-level "z" a call
// costs more than the load (1.6 k instructions per allowed call through the host).
#[inline(always)]
pub(crate) fn le_word(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    if let Some(dst) = w.get_mut(..b.len()) {
        dst.copy_from_slice(b);
    }
    u64::from_le_bytes(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_inputs_are_zero_padded() {
        assert_eq!(le_word(&[]), 0);
        assert_eq!(le_word(&[1]), 1);
        assert_eq!(le_word(&[1, 2]), 0x0201);
        assert_eq!(le_word(&[1, 2, 3, 4, 5, 6, 7, 8]), 0x0807_0605_0403_0201);
    }
}
