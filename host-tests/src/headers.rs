//! Header maps: the ordered multimap Envoy keeps, and the ABI's wire encoding.
//!
//! Wire format (what `proxy_get_header_map_pairs` returns and `proxy_set_header_map_pairs`,
//! `proxy_send_local_response`, `proxy_http_call` take): a u32 LE pair count, then a
//! (u32 LE key length, u32 LE value length) per pair, then every key and value in order,
//! each followed by a NUL byte. An empty buffer decodes to an empty map.

use std::fmt;

/// An ordered list of header entries, keys lower-cased as Envoy stores them. A key may
/// repeat; values are bytes (HTTP allows obs-text), read as text with [`Headers::get`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, Vec<u8>)>,
}

impl Headers {
    /// An empty map.
    pub fn new() -> Headers {
        Headers::default()
    }

    /// Builds a map from pairs (keys are lower-cased).
    pub fn from_pairs<K: AsRef<str>, V: AsRef<[u8]>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Headers {
        let mut headers = Headers::new();
        for (key, value) in pairs {
            headers.add(key.as_ref(), value.as_ref());
        }
        headers
    }

    /// Appends an entry (Envoy's `addCopy`).
    pub fn add(&mut self, key: &str, value: impl AsRef<[u8]>) {
        self.entries
            .push((key.to_ascii_lowercase(), value.as_ref().to_vec()));
    }

    /// Replaces every entry of `key` by one entry (Envoy's `setCopy`): the first entry keeps
    /// its position, the others go; appended when absent.
    pub fn replace(&mut self, key: &str, value: impl AsRef<[u8]>) {
        let key = key.to_ascii_lowercase();
        let value = value.as_ref().to_vec();
        let mut replaced = false;
        self.entries.retain_mut(|(k, v)| {
            if *k != key {
                return true;
            }
            if replaced {
                return false;
            }
            *v = value.clone();
            replaced = true;
            true
        });
        if !replaced {
            self.entries.push((key, value));
        }
    }

    /// Removes every entry of `key`.
    pub fn remove(&mut self, key: &str) {
        let key = key.to_ascii_lowercase();
        self.entries.retain(|(k, _)| *k != key);
    }

    /// The first value of `key` as text (what `get_header_map_value` returns in Envoy),
    /// `None` when absent or not UTF-8.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.get_bytes(key)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The first value of `key` as bytes.
    pub fn get_bytes(&self, key: &str) -> Option<&[u8]> {
        let key = key.to_ascii_lowercase();
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// Every value of `key`, in order, as text (lossy).
    pub fn get_all(&self, key: &str) -> Vec<String> {
        let key = key.to_ascii_lowercase();
        self.entries
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.get_bytes(key).is_some()
    }

    /// The entries in order.
    pub fn entries(&self) -> &[(String, Vec<u8>)] {
        &self.entries
    }

    /// The entries as text pairs (lossy), handy in assertions.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.entries
            .iter()
            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
            .collect()
    }

    /// The number of entries (what the header callbacks receive as `num_headers`).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map has no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Envoy's `byteSize()`: the sum of key and value lengths.
    pub fn byte_size(&self) -> usize {
        self.entries.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// This map in the ABI's wire encoding.
    pub fn encode(&self) -> Vec<u8> {
        encode_pairs(
            self.entries
                .iter()
                .map(|(k, v)| (k.as_bytes(), v.as_slice())),
        )
    }

    /// Decodes the ABI wire encoding (keys are lower-cased as Envoy does when it adds them).
    pub fn decode(bytes: &[u8]) -> Result<Headers, DecodeError> {
        let pairs = decode_pairs(bytes)?;
        let mut headers = Headers::new();
        for (k, v) in pairs {
            headers.add(&String::from_utf8_lossy(&k), v);
        }
        Ok(headers)
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.entries
                    .iter()
                    .map(|(k, v)| (k, String::from_utf8_lossy(v))),
            )
            .finish()
    }
}

/// Encodes pairs in the ABI wire format.
pub fn encode_pairs<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Vec<u8> {
    let pairs: Vec<(&[u8], &[u8])> = pairs.into_iter().collect();
    let mut out = Vec::with_capacity(
        4 + pairs
            .iter()
            .map(|(k, v)| 10 + k.len() + v.len())
            .sum::<usize>(),
    );
    out.extend_from_slice(&len_u32(pairs.len()).to_le_bytes());
    for (k, v) in &pairs {
        out.extend_from_slice(&len_u32(k.len()).to_le_bytes());
        out.extend_from_slice(&len_u32(v.len()).to_le_bytes());
    }
    for (k, v) in &pairs {
        out.extend_from_slice(k);
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// A raw (key, value) pair.
pub type RawPair = (Vec<u8>, Vec<u8>);

/// Why a header map buffer could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed header map: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Decodes the ABI wire format into raw pairs, checking every length and terminator.
pub fn decode_pairs(bytes: &[u8]) -> Result<Vec<RawPair>, DecodeError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let count = read_u32(bytes, 0)? as usize;
    let table_end = count
        .checked_mul(8)
        .and_then(|n| n.checked_add(4))
        .ok_or_else(|| DecodeError(format!("pair count {count} overflows")))?;
    if table_end > bytes.len() {
        return Err(DecodeError(format!(
            "{count} pairs need a {table_end}-byte size table, buffer has {} bytes",
            bytes.len()
        )));
    }
    let mut pairs = Vec::with_capacity(count);
    let mut at = table_end;
    for n in 0..count {
        let key_len = read_u32(bytes, 4 + n * 8)? as usize;
        let value_len = read_u32(bytes, 8 + n * 8)? as usize;
        let key = take(bytes, &mut at, key_len)?;
        let value = take(bytes, &mut at, value_len)?;
        pairs.push((key, value));
    }
    if at != bytes.len() {
        return Err(DecodeError(format!("{} trailing bytes", bytes.len() - at)));
    }
    Ok(pairs)
}

fn read_u32(bytes: &[u8], at: usize) -> Result<u32, DecodeError> {
    let slice = bytes
        .get(at..at + 4)
        .ok_or_else(|| DecodeError(format!("truncated at byte {at}")))?;
    let mut word = [0u8; 4];
    word.copy_from_slice(slice);
    Ok(u32::from_le_bytes(word))
}

fn take(bytes: &[u8], at: &mut usize, len: usize) -> Result<Vec<u8>, DecodeError> {
    let end = at
        .checked_add(len)
        .ok_or_else(|| DecodeError("length overflows".into()))?;
    let value = bytes
        .get(*at..end)
        .ok_or_else(|| {
            DecodeError(format!(
                "a {len}-byte string at byte {at} runs past the end"
            ))
        })?
        .to_vec();
    if bytes.get(end) != Some(&0) {
        return Err(DecodeError(format!(
            "string at byte {at} is not NUL-terminated"
        )));
    }
    *at = end + 1;
    Ok(value)
}

/// Splits a property path as the SDK serializes it (segments joined by NUL).
pub fn split_path(path: &[u8]) -> Vec<String> {
    if path.is_empty() {
        return Vec::new();
    }
    path.split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// Joins property path segments with NUL, as the SDK does.
pub fn join_path<S: AsRef<str>>(segments: &[S]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, s) in segments.iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(s.as_ref().as_bytes());
    }
    out
}
