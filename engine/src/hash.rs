//! SipHash-2-4: a keyed hash, so values chosen by a client (credentials, session ids)
//! cannot be aimed at each other's counter slots without knowing the key.

use crate::words::le_word;

/// A 128-bit SipHash key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashKey(pub [u64; 2]);

impl HashKey {
    /// Derives a key from arbitrary bytes (a configured salt): SipHash of the bytes under two
    /// fixed keys.
    pub fn derive(material: &[u8]) -> HashKey {
        HashKey([
            siphash(HashKey([0x746f_6f6c_6761_7465, 1]), material),
            siphash(HashKey([0x746f_6f6c_6761_7465, 2]), material),
        ])
    }

    /// Mixes another key in (for a per-process secret on top of a configured salt).
    pub fn mix(self, other: HashKey) -> HashKey {
        let mut bytes = [0u8; 32];
        for (chunk, word) in bytes
            .chunks_exact_mut(8)
            .zip(self.0.iter().chain(other.0.iter()))
        {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        HashKey::derive(&bytes)
    }
}

struct State {
    v: [u64; 4],
}

impl State {
    fn new(key: HashKey) -> State {
        let [k0, k1] = key.0;
        State {
            v: [
                k0 ^ 0x736f_6d65_7073_6575,
                k1 ^ 0x646f_7261_6e64_6f6d,
                k0 ^ 0x6c79_6765_6e65_7261,
                k1 ^ 0x7465_6462_7974_6573,
            ],
        }
    }

    // Inlined: at opt-level "z" each round would be a call, as costly as the round.
    #[inline(always)]
    fn round(&mut self) {
        let [mut v0, mut v1, mut v2, mut v3] = self.v;
        v0 = v0.wrapping_add(v1);
        v1 = v1.rotate_left(13);
        v1 ^= v0;
        v0 = v0.rotate_left(32);
        v2 = v2.wrapping_add(v3);
        v3 = v3.rotate_left(16);
        v3 ^= v2;
        v0 = v0.wrapping_add(v3);
        v3 = v3.rotate_left(21);
        v3 ^= v0;
        v2 = v2.wrapping_add(v1);
        v1 = v1.rotate_left(17);
        v1 ^= v2;
        v2 = v2.rotate_left(32);
        self.v = [v0, v1, v2, v3];
    }

    fn compress(&mut self, m: u64) {
        self.v[3] ^= m;
        self.round();
        self.round();
        self.v[0] ^= m;
    }
}

/// SipHash-2-4 under `N` keys at once, fed in pieces: the same results as hashing their
/// concatenation under each key, without building it. Each message word is assembled once
/// and compressed into every key's state (a grant is hashed under two keys per request).
struct Hasher<const N: usize> {
    states: [State; N],
    /// Bytes of an unfinished word, little-endian.
    tail: u64,
    /// How many (0 to 7).
    tail_len: usize,
    len: usize,
}

impl<const N: usize> Hasher<N> {
    fn new(keys: [HashKey; N]) -> Hasher<N> {
        Hasher {
            states: keys.map(State::new),
            tail: 0,
            tail_len: 0,
            len: 0,
        }
    }

    fn compress(&mut self, m: u64) {
        for s in &mut self.states {
            s.compress(m);
        }
    }

    fn write(&mut self, data: &[u8]) {
        self.len = self.len.wrapping_add(data.len());
        let mut data = data;
        if self.tail_len > 0 {
            let take = (8 - self.tail_len).min(data.len());
            let Some((head, rest)) = data.split_at_checked(take) else {
                return;
            };
            self.tail |= le_word(head) << (8 * self.tail_len);
            self.tail_len += take;
            if self.tail_len < 8 {
                return;
            }
            self.compress(self.tail);
            data = rest;
        }
        let mut chunks = data.chunks_exact(8);
        for chunk in &mut chunks {
            self.compress(le_word(chunk));
        }
        self.tail = le_word(chunks.remainder());
        self.tail_len = chunks.remainder().len();
    }

    fn finish(mut self) -> [u64; N] {
        self.compress(self.tail | ((self.len as u64 & 0xff) << 56));
        self.states.map(|mut s| {
            s.v[2] ^= 0xff;
            for _ in 0..4 {
                s.round();
            }
            s.v[0] ^ s.v[1] ^ s.v[2] ^ s.v[3]
        })
    }

    /// Writes each part prefixed by its length (so `("ab","c")` and `("a","bc")` differ).
    fn write_parts(&mut self, parts: &[&[u8]]) {
        for p in parts {
            self.write(&(p.len() as u32).to_le_bytes());
            self.write(p);
        }
    }
}

/// SipHash-2-4 of `data` under `key`.
pub fn siphash(key: HashKey, data: &[u8]) -> u64 {
    let mut h = Hasher::new([key]);
    h.write(data);
    let [v] = h.finish();
    v
}

/// SipHash-2-4 of several parts, each prefixed by its length (so `("ab","c")` and
/// `("a","bc")` differ), under each of `keys`, in one pass over the parts.
pub fn siphash_parts_under<const N: usize>(keys: [HashKey; N], parts: &[&[u8]]) -> [u64; N] {
    let mut h = Hasher::new(keys);
    // Laid out once when short (a grant is a few small parts): one pass over whole words
    // instead of six writes each carrying a partial word over.
    let mut buf = [0u8; SHORT];
    match lay_out(parts, &mut buf) {
        Some(message) => h.write(message),
        None => h.write_parts(parts),
    }
    h.finish()
}

/// The longest message [`siphash_parts_under`] lays out before hashing.
const SHORT: usize = 128;

/// `parts`, each prefixed by its length, in `buf`, if they fit.
fn lay_out<'b>(parts: &[&[u8]], buf: &'b mut [u8; SHORT]) -> Option<&'b [u8]> {
    let mut n = 0usize;
    for p in parts {
        let len = (p.len() as u32).to_le_bytes();
        let end = n.checked_add(len.len())?.checked_add(p.len())?;
        let dst = buf.get_mut(n..end)?;
        let (prefix, rest) = dst.split_at_mut(len.len());
        prefix.copy_from_slice(&len);
        rest.copy_from_slice(p);
        n = end;
    }
    buf.get(..n)
}

/// `v` as 16 lower-case hex digits (what `format!("{v:016x}")` writes, without the
/// formatting machinery, on the per-request path).
pub fn hex16(v: u64) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'0'; 16];
    for (i, d) in out.iter_mut().enumerate() {
        let nibble = (v >> ((15 - i) * 4)) & 0xf;
        *d = *DIGITS.get(nibble as usize).unwrap_or(&b'0');
    }
    String::from_utf8(out.to_vec()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex16_writes_what_format_writes() {
        for v in [0, 1, 0xabc, u64::MAX, 0x0123_4567_89ab_cdef, 1 << 63] {
            assert_eq!(super::hex16(v), format!("{v:016x}"));
        }
    }

    use super::*;

    /// Reference vectors from the SipHash paper: key 00..0f, message 00..(n-1).
    #[test]
    fn reference_vectors() {
        let key = HashKey([0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908]);
        let msg: Vec<u8> = (0u8..64).collect();
        assert_eq!(siphash(key, &msg[..0]), 0x726f_db47_dd0e_0e31);
        assert_eq!(siphash(key, &msg[..1]), 0x74f8_39c5_93dc_67fd);
        assert_eq!(siphash(key, &msg[..7]), 0xab02_00f5_8b01_d137);
        assert_eq!(siphash(key, &msg[..8]), 0x93f5_f579_9a93_2462);
        assert_eq!(siphash(key, &msg[..15]), 0xa129_ca61_49be_45e5);
        assert_eq!(siphash(key, &msg[..63]), 0x958a_324c_eb06_4572);
    }

    /// `parts` as `siphash_parts_under` feeds them: each prefixed by its length.
    fn joined(parts: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in parts {
            out.extend_from_slice(&(p.len() as u32).to_le_bytes());
            out.extend_from_slice(p);
        }
        out
    }

    #[test]
    fn parts_hash_as_their_concatenation() {
        let k = HashKey::derive(b"salt");
        let parts: [&[u8]; 4] = [b"g", b"\x01", b"Bearer a-credential-of-some-length", b""];
        assert_eq!(
            siphash_parts_under([k], &parts),
            [siphash(k, &joined(&parts))]
        );
        // Messages laid out whole (up to SHORT bytes) and written part by part (longer).
        let long: Vec<u8> = (0..400u32).map(|i| i as u8).collect();
        for len in (0..24).chain(SHORT - 40..SHORT + 8).chain([300, 400]) {
            let parts: [&[u8]; 3] = [b"g", b"\x01", &long[..len]];
            assert_eq!(
                siphash_parts_under([k, HashKey::derive(b"two")], &parts),
                [k, HashKey::derive(b"two")].map(|k| siphash(k, &joined(&parts))),
                "{len}"
            );
        }
        let msg: Vec<u8> = (0u8..64).collect();
        for split in 0..msg.len() {
            let (a, b) = msg.split_at(split);
            let mut h = Hasher::new([k]);
            h.write(a);
            h.write(b);
            assert_eq!(h.finish(), [siphash(k, &msg)], "split at {split}");
        }
    }

    #[test]
    fn several_keys_hash_as_each_key_alone() {
        let (k1, k2) = (HashKey::derive(b"one"), HashKey::derive(b"two"));
        let msg: Vec<u8> = (0u8..64).collect();
        for a in 0..20 {
            for b in 0..20 {
                let parts: [&[u8]; 3] = [&msg[..a], b"\x01", &msg[a..a + b]];
                let whole = joined(&parts);
                assert_eq!(
                    siphash_parts_under([k1, k2], &parts),
                    [siphash(k1, &whole), siphash(k2, &whole)]
                );
            }
        }
    }

    #[test]
    fn parts_are_length_prefixed() {
        let k = HashKey::derive(b"salt");
        assert_ne!(
            siphash_parts_under([k], &[b"ab", b"c"]),
            siphash_parts_under([k], &[b"a", b"bc"])
        );
        assert_ne!(HashKey::derive(b"a"), HashKey::derive(b"b"));
        assert_ne!(k.mix(HashKey::derive(b"x")), k);
    }
}
