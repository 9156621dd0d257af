//! SipHash-2-4: a keyed hash, so values chosen by a client (credentials, session ids)
//! cannot be aimed at each other's counter slots without knowing the key.

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

/// SipHash-2-4 fed in pieces: the same result as hashing their concatenation, without
/// building it.
struct Hasher {
    state: State,
    /// Bytes of an unfinished word, little-endian.
    tail: u64,
    tail_len: usize,
    len: usize,
}

impl Hasher {
    fn new(key: HashKey) -> Hasher {
        Hasher {
            state: State::new(key),
            tail: 0,
            tail_len: 0,
            len: 0,
        }
    }

    fn push_byte(&mut self, b: u8) {
        self.tail |= u64::from(b) << (8 * self.tail_len);
        self.tail_len += 1;
        if self.tail_len == 8 {
            self.state.compress(self.tail);
            self.tail = 0;
            self.tail_len = 0;
        }
    }

    fn write(&mut self, mut data: &[u8]) {
        self.len = self.len.wrapping_add(data.len());
        while self.tail_len > 0 {
            let Some((&b, rest)) = data.split_first() else {
                return;
            };
            self.push_byte(b);
            data = rest;
        }
        let mut chunks = data.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.state.compress(u64::from_le_bytes(word));
        }
        for &b in chunks.remainder() {
            self.push_byte(b);
        }
    }

    fn finish(mut self) -> u64 {
        let s = &mut self.state;
        s.compress(self.tail | ((self.len as u64 & 0xff) << 56));
        s.v[2] ^= 0xff;
        for _ in 0..4 {
            s.round();
        }
        s.v[0] ^ s.v[1] ^ s.v[2] ^ s.v[3]
    }
}

/// SipHash-2-4 of `data` under `key`.
pub fn siphash(key: HashKey, data: &[u8]) -> u64 {
    let mut h = Hasher::new(key);
    h.write(data);
    h.finish()
}

/// SipHash-2-4 of several parts, each prefixed by its length (so `("ab","c")` and
/// `("a","bc")` differ).
pub fn siphash_parts(key: HashKey, parts: &[&[u8]]) -> u64 {
    let mut h = Hasher::new(key);
    for p in parts {
        h.write(&(p.len() as u32).to_le_bytes());
        h.write(p);
    }
    h.finish()
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

    #[test]
    fn parts_hash_as_their_concatenation() {
        let k = HashKey::derive(b"salt");
        let parts: [&[u8]; 4] = [b"g", b"\x01", b"Bearer a-credential-of-some-length", b""];
        let mut joined = Vec::new();
        for p in parts {
            joined.extend_from_slice(&(p.len() as u32).to_le_bytes());
            joined.extend_from_slice(p);
        }
        assert_eq!(siphash_parts(k, &parts), siphash(k, &joined));
        let msg: Vec<u8> = (0u8..64).collect();
        for split in 0..msg.len() {
            let (a, b) = msg.split_at(split);
            let mut h = Hasher::new(k);
            h.write(a);
            h.write(b);
            assert_eq!(h.finish(), siphash(k, &msg), "split at {split}");
        }
    }

    #[test]
    fn parts_are_length_prefixed() {
        let k = HashKey::derive(b"salt");
        assert_ne!(
            siphash_parts(k, &[b"ab", b"c"]),
            siphash_parts(k, &[b"a", b"bc"])
        );
        assert_ne!(HashKey::derive(b"a"), HashKey::derive(b"b"));
        assert_ne!(k.mix(HashKey::derive(b"x")), k);
    }
}
