//! Strict JSON: a validator that refuses anything a parser differential could exploit, and
//! borrowed navigation over what it accepted.

mod number;
mod owned;
mod string;
mod validate;
mod value;

pub use number::{Number, OwnedNumber};
pub use owned::Owned;
pub use string::{Chars, JsonStr};
pub use validate::{Error, ErrorKind, KeyRule, Options, Validator};
pub use value::{Elements, Kind, Members, Value};

/// The first byte of `b` after JSON whitespace.
pub(crate) fn first_after_whitespace(b: &[u8]) -> Option<u8> {
    b.get(validate::skip_ws(b, 0)).copied()
}

/// Validates `src` with folded-key duplicate detection (the request rule) and returns the
/// top-level value. Allocates scratch space; hot paths keep a [`Validator`] instead.
pub fn parse_strict(src: &[u8], max_depth: u32) -> Result<Value<'_>, Error> {
    Validator::new().validate(
        src,
        Options {
            max_depth,
            keys: KeyRule::Folded,
        },
    )
}
