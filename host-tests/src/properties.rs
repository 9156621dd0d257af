//! Properties (`proxy_get_property`): Envoy's attributes, looked up by a path of segments.
//!
//! Envoy serializes values natively: strings and bytes as-is, integers as 8 bytes little
//! endian, booleans as one byte, doubles as 8 bytes, maps as a header-map encoding. A
//! missing path is `NOT_FOUND`. Values set by the module (`proxy_set_property`) become
//! filter state `wasm.<path>` and read back under their path.

use std::collections::BTreeMap;

use crate::headers::encode_pairs;

/// A property value, serialized the way Envoy does.
#[derive(Debug, Clone, PartialEq)]
pub enum PropertyValue {
    /// Text.
    String(String),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// A signed integer: 8 bytes LE.
    Int(i64),
    /// An unsigned integer: 8 bytes LE.
    Uint(u64),
    /// One byte, 0 or 1.
    Bool(bool),
    /// 8 bytes LE.
    Double(f64),
    /// A map (e.g. `request.headers`): pair-encoded; its keys are path segments too.
    Map(Vec<(String, PropertyValue)>),
}

impl PropertyValue {
    /// The bytes `proxy_get_property` returns.
    pub fn serialize(&self) -> Vec<u8> {
        match self {
            PropertyValue::String(s) => s.as_bytes().to_vec(),
            PropertyValue::Bytes(b) => b.clone(),
            PropertyValue::Int(i) => i.to_le_bytes().to_vec(),
            PropertyValue::Uint(u) => u.to_le_bytes().to_vec(),
            PropertyValue::Bool(b) => vec![u8::from(*b)],
            PropertyValue::Double(d) => d.to_le_bytes().to_vec(),
            PropertyValue::Map(entries) => {
                let serialized: Vec<(Vec<u8>, Vec<u8>)> = entries
                    .iter()
                    .map(|(k, v)| (k.as_bytes().to_vec(), v.serialize()))
                    .collect();
                encode_pairs(serialized.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))
            }
        }
    }
}

impl From<&str> for PropertyValue {
    fn from(value: &str) -> Self {
        PropertyValue::String(value.to_string())
    }
}

impl From<String> for PropertyValue {
    fn from(value: String) -> Self {
        PropertyValue::String(value)
    }
}

impl From<i64> for PropertyValue {
    fn from(value: i64) -> Self {
        PropertyValue::Int(value)
    }
}

impl From<u64> for PropertyValue {
    fn from(value: u64) -> Self {
        PropertyValue::Uint(value)
    }
}

impl From<bool> for PropertyValue {
    fn from(value: bool) -> Self {
        PropertyValue::Bool(value)
    }
}

impl From<Vec<u8>> for PropertyValue {
    fn from(value: Vec<u8>) -> Self {
        PropertyValue::Bytes(value)
    }
}

/// A set of properties keyed by path.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Properties {
    values: BTreeMap<Vec<String>, PropertyValue>,
}

impl Properties {
    /// An empty set.
    pub fn new() -> Properties {
        Properties::default()
    }

    /// Sets `path` (e.g. `["source", "address"]`).
    pub fn set<S: AsRef<str>>(&mut self, path: &[S], value: impl Into<PropertyValue>) {
        self.values.insert(
            path.iter().map(|s| s.as_ref().to_string()).collect(),
            value.into(),
        );
    }

    /// Removes `path`.
    pub fn remove<S: AsRef<str>>(&mut self, path: &[S]) {
        let key: Vec<String> = path.iter().map(|s| s.as_ref().to_string()).collect();
        self.values.remove(&key);
    }

    /// Looks `path` up: an exact entry, or a key inside a map entry on a prefix of it.
    pub fn lookup(&self, path: &[String]) -> Option<PropertyValue> {
        if let Some(value) = self.values.get(path) {
            return Some(value.clone());
        }
        for split in (1..path.len()).rev() {
            let (prefix, rest) = path.split_at(split);
            if let Some(value) = self.values.get(prefix) {
                return descend(value, rest);
            }
        }
        None
    }

    /// Adds every entry of `other`, replacing equal paths.
    pub fn extend_from(&mut self, other: &Properties) {
        for (k, v) in &other.values {
            self.values.insert(k.clone(), v.clone());
        }
    }
}

fn descend(value: &PropertyValue, rest: &[String]) -> Option<PropertyValue> {
    let Some((first, more)) = rest.split_first() else {
        return Some(value.clone());
    };
    match value {
        PropertyValue::Map(entries) => entries
            .iter()
            .find(|(k, _)| k == first)
            .and_then(|(_, v)| descend(v, more)),
        _ => None,
    }
}
