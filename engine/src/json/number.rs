//! JSON numbers: integers exactly (when they fit 64 bits), everything else as f64.

use std::cmp::Ordering;

/// A JSON number.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number {
    /// An integer literal that fits in an `i64`.
    Int(i64),
    /// Any other number (fraction, exponent, or too large), as the nearest `f64`.
    Float(f64),
}

impl Number {
    /// Parses a validated JSON number literal.
    pub fn parse(raw: &str) -> Option<Number> {
        let integral = !raw.bytes().any(|c| matches!(c, b'.' | b'e' | b'E'));
        if integral {
            if let Ok(i) = raw.parse::<i64>() {
                return Some(Number::Int(i));
            }
        }
        raw.parse::<f64>().ok().map(Number::Float)
    }

    /// The value as an `f64` (may round).
    pub fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }

    /// Numeric comparison; integers compare exactly.
    pub fn compare(self, other: Number) -> Option<Ordering> {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => Some(a.cmp(&b)),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }

    /// The smallest non-negative integer at least this value, if the value is a finite
    /// number >= 0 (fractions round up, so a sum of increments never undercounts).
    pub fn ceil_u64(self) -> Option<u64> {
        match self {
            Number::Int(i) => u64::try_from(i).ok(),
            Number::Float(f) if f.is_finite() && f >= 0.0 => {
                let c = f.ceil();
                // 2^64 as f64; anything at or above does not fit.
                if c < 18_446_744_073_709_551_616.0 {
                    Some(c as u64)
                } else {
                    None
                }
            }
            Number::Float(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_compares() {
        assert_eq!(Number::parse("42"), Some(Number::Int(42)));
        assert_eq!(Number::parse("-0"), Some(Number::Int(0)));
        assert_eq!(Number::parse("1.5"), Some(Number::Float(1.5)));
        assert_eq!(Number::parse("1e2"), Some(Number::Float(100.0)));
        assert!(matches!(
            Number::parse("123456789012345678901234567890"),
            Some(Number::Float(_))
        ));
        let big = Number::Int(9_007_199_254_740_993);
        assert_eq!(
            big.compare(Number::Int(9_007_199_254_740_992)),
            Some(Ordering::Greater)
        );
        assert_eq!(
            Number::Int(3).compare(Number::Float(2.5)),
            Some(Ordering::Greater)
        );
    }

    #[test]
    fn increments_round_up_and_refuse_negatives() {
        assert_eq!(Number::Int(5).ceil_u64(), Some(5));
        assert_eq!(Number::Float(2.1).ceil_u64(), Some(3));
        assert_eq!(Number::Int(-1).ceil_u64(), None);
        assert_eq!(Number::Float(-0.5).ceil_u64(), None);
        assert_eq!(Number::Float(f64::INFINITY).ceil_u64(), None);
        assert_eq!(Number::Float(1e30).ceil_u64(), None);
    }
}
