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

    /// Structural equality with a request value: numbers numerically, strings after
    /// unescaping, objects regardless of member order. Recursion is bounded by this
    /// (policy) value's depth.
    pub fn equals(&self, v: Value<'_>) -> bool {
        match self {
            Owned::Null => v.is_null(),
            Owned::Bool(b) => v.as_bool() == Some(*b),
            Owned::Number(n) => v
                .as_number()
                .is_some_and(|m| m.compare(n.as_number()).is_eq()),
            Owned::String(s) => v.as_str().is_some_and(|t| t.eq_str(s)),
            Owned::Array(items) => {
                v.kind() == Kind::Array && {
                    let mut els = v.elements();
                    items
                        .iter()
                        .all(|item| els.next().is_some_and(|e| item.equals(e)))
                        && els.next().is_none()
                }
            }
            Owned::Object(members) => {
                v.kind() == Kind::Object
                    && v.members().count() == members.len()
                    && members
                        .iter()
                        .all(|(k, item)| v.get(k).is_some_and(|e| item.equals(e)))
            }
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

#[cfg(test)]
mod tests {
    use super::super::parse_strict;
    use super::*;

    fn value(src: &str) -> Owned {
        Owned::from_value(parse_strict(src.as_bytes(), 16).unwrap_or_else(|e| panic!("{e}")))
    }

    #[test]
    fn structural_equality() {
        let lit = value(r#"{"a":[1,"x",null],"b":true}"#);
        let req = parse_strict(br#"{"b":true,"a":[1.0,"\u0078",null]}"#, 16);
        assert!(req.is_ok_and(|r| lit.equals(r)));
        let other = parse_strict(br#"{"b":true,"a":[1,"x"]}"#, 16);
        assert!(other.is_ok_and(|r| !lit.equals(r)));
        assert!(!value("1").equals(Value::new("\"1\"")));
        assert!(value("\"é\"").equals(Value::new("\"\\u00e9\"")));
    }
}
