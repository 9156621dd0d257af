//! Owned JSON values, for literals in the policy (condition operands) that request values
//! are compared with.

use super::number::OwnedNumber;
use super::value::{Kind, Value};

/// A JSON value owned by the compiled policy.
#[derive(Clone, Debug, PartialEq)]
pub enum Owned {
    /// `null`
    Null,
    /// A boolean.
    Bool(bool),
    /// A number.
    Number(OwnedNumber),
    /// A string (unescaped).
    String(String),
    /// An array.
    Array(Vec<Owned>),
    /// An object, members in document order (keys are unique: the validator saw to it).
    Object(Vec<(String, Owned)>),
}

impl Owned {
    /// Copies a validated value. Recursion is bounded by the validator's depth limit.
    pub fn from_value(v: Value<'_>) -> Owned {
        match v.kind() {
            Kind::Null => Owned::Null,
            Kind::Bool => Owned::Bool(v.as_bool().unwrap_or(false)),
            Kind::Number => v
                .as_number()
                .map_or(Owned::Null, |n| Owned::Number(n.to_owned_number())),
            Kind::String => Owned::String(
                v.as_str()
                    .map(|s| s.decode().into_owned())
                    .unwrap_or_default(),
            ),
            Kind::Array => Owned::Array(v.elements().map(Owned::from_value).collect()),
            Kind::Object => Owned::Object(
                v.members()
                    .map(|(k, v)| (k.decode().into_owned(), Owned::from_value(v)))
                    .collect(),
            ),
        }
    }

    /// The JSON type of this value.
    pub fn kind(&self) -> Kind {
        match self {
            Owned::Null => Kind::Null,
            Owned::Bool(_) => Kind::Bool,
            Owned::Number(_) => Kind::Number,
            Owned::String(_) => Kind::String,
            Owned::Array(_) => Kind::Array,
            Owned::Object(_) => Kind::Object,
        }
    }
}
