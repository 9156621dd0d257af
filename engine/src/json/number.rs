//! JSON numbers, compared exactly as decimals: no floating point, so `0.1 + 0.2`-style
//! rounding never decides a policy, and no float tables weigh down the module.
//!
//! Servers usually read numbers as IEEE doubles, which cannot tell apart decimals that agree
//! on their first 15 or so significant digits; [`Number::near`] reports such pairs so the
//! conditions can treat them as doubtful.

use crate::digits::{push_decimal, push_signed, shift_in};
use std::cmp::Ordering;

/// A validated JSON number literal, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Number<'a> {
    raw: &'a str,
}

/// A JSON number literal owned by the policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedNumber(String);

impl OwnedNumber {
    /// A view of the number.
    pub fn as_number(&self) -> Number<'_> {
        Number { raw: &self.0 }
    }
}

/// The digits of a number in the form `0.d1 d2 d3 ... × 10^exp` with `d1 != 0`.
struct Decimal<'a> {
    negative: bool,
    int: &'a [u8],
    frac: &'a [u8],
    /// Leading zeros of `int ++ frac` skipped.
    skip: usize,
    /// Significant digits (after `skip`, trailing zeros dropped).
    len: usize,
    exp: i64,
}

/// Digits two numbers are scaled to when deciding whether a double could blur them.
const SCALE_DIGITS: i64 = 17;
/// How far apart (in units of the 17th digit) two numbers may be and still be blurred: a
/// double keeps 15.9 significant digits, so this errs towards doubt.
const NEAR_UNITS: u64 = 100;

fn parse_exp(s: &[u8]) -> i64 {
    let (neg, digits) = match s.split_first() {
        Some((b'-', d)) => (true, d),
        Some((b'+', d)) => (false, d),
        _ => (false, s),
    };
    // Saturating: an exponent too large for an i64 reads as the largest.
    let v = digits.iter().fold(0u64, |v, &d| {
        shift_in(v, 10, u64::from(d.wrapping_sub(b'0'))).unwrap_or(u64::MAX)
    });
    let v = i64::try_from(v).unwrap_or(i64::MAX);
    if neg {
        -v
    } else {
        v
    }
}

impl<'a> Decimal<'a> {
    fn of(raw: &'a str) -> Decimal<'a> {
        let b = raw.as_bytes();
        let (negative, b) = match b.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, b),
        };
        let (mantissa, exp) = match b.iter().position(|&c| c == b'e' || c == b'E') {
            Some(i) => (
                b.get(..i).unwrap_or(&[]),
                parse_exp(b.get(i + 1..).unwrap_or(&[])),
            ),
            None => (b, 0),
        };
        let (int, frac) = match mantissa.iter().position(|&c| c == b'.') {
            Some(i) => (
                mantissa.get(..i).unwrap_or(&[]),
                mantissa.get(i + 1..).unwrap_or(&[]),
            ),
            None => (mantissa, &[][..]),
        };
        let all = || int.iter().chain(frac.iter());
        let skip = all().take_while(|&&c| c == b'0').count();
        let total = int.len() + frac.len();
        let trailing = all().rev().take_while(|&&c| c == b'0').count();
        let len = total.saturating_sub(skip).saturating_sub(trailing);
        let exp = exp
            .saturating_add(i64::try_from(int.len()).unwrap_or(i64::MAX))
            .saturating_sub(i64::try_from(skip).unwrap_or(0));
        Decimal {
            negative,
            int,
            frac,
            skip,
            len,
            exp,
        }
    }

    fn is_zero(&self) -> bool {
        self.len == 0
    }

    /// The i-th significant digit (0 past the end).
    fn digit(&self, i: usize) -> u8 {
        if i >= self.len {
            return 0;
        }
        let at = self.skip + i;
        match self.int.get(at) {
            Some(&d) => d - b'0',
            None => self.frac.get(at - self.int.len()).map_or(0, |&d| d - b'0'),
        }
    }

    /// Compares magnitudes.
    fn cmp_abs(&self, other: &Decimal<'_>) -> Ordering {
        match (self.is_zero(), other.is_zero()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        self.exp.cmp(&other.exp).then_with(|| {
            let n = self.len.max(other.len);
            (0..n)
                .map(|i| self.digit(i).cmp(&other.digit(i)))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        })
    }
}

impl<'a> Number<'a> {
    /// A number literal; `None` unless `raw` is exactly a JSON number.
    pub fn parse(raw: &'a str) -> Option<Number<'a>> {
        let b = raw.as_bytes();
        let mut i = usize::from(b.first() == Some(&b'-'));
        let digits = |i: &mut usize| {
            let start = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i - start
        };
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                digits(&mut i);
            }
            _ => return None,
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            if digits(&mut i) == 0 {
                return None;
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if digits(&mut i) == 0 {
                return None;
            }
        }
        (i == b.len()).then_some(Number { raw })
    }

    /// The literal as written.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// An owned copy.
    pub fn to_owned_number(&self) -> OwnedNumber {
        OwnedNumber(self.raw.to_string())
    }

    /// Exact numeric comparison.
    pub fn compare(&self, other: Number<'_>) -> Ordering {
        let (a, b) = (Decimal::of(self.raw), Decimal::of(other.raw));
        let neg_a = a.negative && !a.is_zero();
        let neg_b = b.negative && !b.is_zero();
        match (neg_a, neg_b) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => a.cmp_abs(&b),
            (true, true) => b.cmp_abs(&a),
        }
    }

    /// The whole number a double holds for this one, below 10^19 in magnitude, as
    /// JavaScript and Python's `int` write it: `22.0`, `2.2e1` and `220e-1` are `22`, `-22.0`
    /// is `-22`, and `21.9999999999999999` (which a double rounds up) is `22` too. `None`
    /// for a number with a fraction a double keeps.
    pub fn whole_digits(&self) -> Option<String> {
        let d = Decimal::of(self.raw);
        // Checked first: `0e999999999` has that many digits, all zero.
        let n = usize::try_from(d.exp).unwrap_or(0).min(20);
        let down = (0..n).try_fold(0u64, |v, i| shift_in(v, 10, u64::from(d.digit(i))))?;
        [down, down.checked_add(1)?].into_iter().find_map(|w| {
            let mut t = String::new();
            if d.negative && w > 0 {
                t.push('-');
            }
            push_decimal(&mut t, w);
            Number::parse(&t)
                .is_some_and(|w| w.near(*self))
                .then_some(t)
        })
    }

    /// What a server binding the number to an integer may make of it, when that is not the
    /// number itself: cut toward zero (Go's mcp-go `GetInt` does `int(v)` on the float64
    /// `encoding/json` gives it, Jackson's `ACCEPT_FLOAT_AS_INT` is on by default), and any
    /// magnitude from 2^63 up as the most negative int64 (Go's `int(v)` of such a float on
    /// amd64). JSON number text.
    pub fn truncated(&self) -> Option<String> {
        const MIN_INT64: &str = "-9223372036854775808";
        let d = Decimal::of(self.raw);
        let ints = usize::try_from(d.exp).unwrap_or(0);
        if d.is_zero() {
            return None;
        }
        if ints >= 19 {
            let abs = Number::parse(self.raw.trim_start_matches('-'))?;
            let limit = Number::parse(MIN_INT64.get(1..)?)?;
            if abs.compare(limit) != Ordering::Less {
                return Some(MIN_INT64.into());
            }
        }
        if ints >= d.len {
            return None;
        }
        let mut out = String::with_capacity(ints + 1);
        if d.negative && ints > 0 {
            out.push('-');
        }
        out.extend((0..ints).map(|i| char::from(b'0' + d.digit(i))));
        if ints == 0 {
            out.push('0');
        }
        Some(out)
    }

    /// Whether a server reading doubles might take the two numbers for equal: they differ
    /// by less than about 1e-14 of their size, or both underflow to zero, or both overflow.
    pub fn near(&self, other: Number<'_>) -> bool {
        let (a, b) = (Decimal::of(self.raw), Decimal::of(other.raw));
        let tiny = |d: &Decimal<'_>| d.is_zero() || d.exp < -300;
        let huge = |d: &Decimal<'_>| d.exp > 309;
        match (tiny(&a), tiny(&b)) {
            (true, true) => return true,
            (true, false) | (false, true) => return false,
            _ => {}
        }
        if a.negative != b.negative {
            return false;
        }
        if huge(&a) || huge(&b) {
            return huge(&a) && huge(&b);
        }
        // Both scaled to 17 digits at the larger exponent.
        let top = a.exp.max(b.exp);
        let scaled = |d: &Decimal<'_>| {
            let k = usize::try_from(SCALE_DIGITS - (top - d.exp)).unwrap_or(0);
            (0..k).fold(0u64, |v, i| {
                shift_in(v, 10, u64::from(d.digit(i))).unwrap_or(u64::MAX)
            })
        };
        scaled(&a).abs_diff(scaled(&b)) <= NEAR_UNITS
    }

    /// The smallest non-negative integer at least this value, for a value >= 0 that fits
    /// in a u64 (fractions round up, so a sum of increments never undercounts).
    pub fn ceil_u64(&self) -> Option<u64> {
        let d = Decimal::of(self.raw);
        if d.is_zero() {
            return Some(0);
        }
        if d.negative {
            return None;
        }
        if d.exp <= 0 {
            return Some(1);
        }
        let int_digits = usize::try_from(d.exp).ok().filter(|e| *e <= 20)?;
        let mut v: u64 = 0;
        for i in 0..int_digits {
            v = shift_in(v, 10, u64::from(d.digit(i)))?;
        }
        if d.len > int_digits {
            v = v.checked_add(1)?;
        }
        Some(v)
    }

    /// A canonical text: equal numbers give equal texts (`1`, `1.0`, `10e-1`: `0.1e1`).
    pub fn canonical(&self) -> String {
        let d = Decimal::of(self.raw);
        if d.is_zero() {
            return "0".into();
        }
        let mut s = String::with_capacity(d.len + 8);
        if d.negative {
            s.push('-');
        }
        s.push_str("0.");
        for i in 0..d.len {
            s.push(char::from(b'0' + d.digit(i)));
        }
        s.push('e');
        push_signed(&mut s, d.exp);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Number<'_> {
        Number::parse(s).unwrap()
    }

    #[test]
    fn whole_as_a_double_holds_it() {
        for (raw, want) in [
            ("22", Some("22")),
            ("22.0", Some("22")),
            ("2.2e1", Some("22")),
            ("220e-1", Some("22")),
            ("-22.0", Some("-22")),
            ("0", Some("0")),
            ("-0.0", Some("0")),
            ("1e18", Some("1000000000000000000")),
            ("0e99999999999999999999", Some("0")),
            ("-1e-400", Some("0")),
            // A double rounds these to the whole number beside them.
            ("21.9999999999999999", Some("22")),
            ("999.99999999999999", Some("1000")),
            ("-99.999999999999999", Some("-100")),
            ("0.99999999999999999", Some("1")),
            ("22.0000000000000001", Some("22")),
            ("22.9", None),
            ("0.5", None),
            ("0.00000000000000001", None),
            ("1e22", None),
        ] {
            assert_eq!(n(raw).whole_digits().as_deref(), want, "{raw}");
        }
    }

    #[test]
    fn truncation_as_integer_binding_reads_it() {
        for (raw, want) in [
            ("0.5", Some("0")),
            ("-0.5", Some("0")),
            ("22.9", Some("22")),
            ("-22.9", Some("-22")),
            ("2.25e1", Some("22")),
            ("22", None),
            ("2.2e1", None),
            ("0", None),
            ("9223372036854775807", None),
            ("9.3e18", Some("-9223372036854775808")),
            ("1e300", Some("-9223372036854775808")),
            ("-1e19", Some("-9223372036854775808")),
        ] {
            let n = Number::parse(raw).unwrap();
            assert_eq!(n.truncated().as_deref(), want, "{raw}");
        }
    }

    #[test]
    fn parses_json_numbers_only() {
        for ok in [
            "0",
            "-0",
            "1",
            "-12.5e-3",
            "1E+2",
            "0.000",
            "123456789012345678901234567890",
        ] {
            assert!(Number::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "", "-", "01", "1.", ".5", "1e", "+1", " 1", "1 ", "0x10", "NaN", "1.5.2",
        ] {
            assert!(Number::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn exact_comparison() {
        use Ordering::*;
        for (a, b, o) in [
            ("1", "1.0", Equal),
            ("10e-1", "1", Equal),
            ("-0", "0", Equal),
            ("0.000", "-0e5", Equal),
            ("2", "10", Less),
            ("-2", "-10", Greater),
            ("-1", "0", Less),
            ("1e2", "99.999", Greater),
            ("9007199254740993", "9007199254740992", Greater),
            ("0.1", "0.10000000000000000001", Less),
            (
                "123456789012345678901234567890",
                "1.2345678901234567890123456789e29",
                Equal,
            ),
            ("1e400", "1e399", Greater),
            ("-1e-400", "0", Less),
        ] {
            assert_eq!(n(a).compare(n(b)), o, "{a} vs {b}");
        }
    }

    #[test]
    fn near_and_canonical() {
        assert!(n("99.999999999999999999").near(n("100")));
        assert!(n("1e-400").near(n("0")));
        assert!(n("1e400").near(n("2e999")));
        assert!(!n("1e308").near(n("1e309")));
        assert!(n("100.00000000000000001").near(n("100")));
        assert!(n("0.30000000000000004").near(n("0.3")));
        assert!(!n("0.31").near(n("0.3")));
        assert!(!n("-1").near(n("1")));
        assert_eq!(n("1.0").canonical(), n("10e-1").canonical());
        assert_eq!(n("-0").canonical(), "0");
        assert_ne!(n("1").canonical(), n("2").canonical());
    }

    #[test]
    fn increments_round_up_and_refuse_negatives() {
        assert_eq!(n("5").ceil_u64(), Some(5));
        assert_eq!(n("2.1").ceil_u64(), Some(3));
        assert_eq!(n("0.0001").ceil_u64(), Some(1));
        assert_eq!(n("0").ceil_u64(), Some(0));
        assert_eq!(n("-0").ceil_u64(), Some(0));
        assert_eq!(n("-1").ceil_u64(), None);
        assert_eq!(n("-0.5").ceil_u64(), None);
        assert_eq!(n("1e30").ceil_u64(), None);
        assert_eq!(n("18446744073709551615").ceil_u64(), Some(u64::MAX));
        assert_eq!(n("18446744073709551616").ceil_u64(), None);
        assert_eq!(n("1.5e2").ceil_u64(), Some(150));
    }
}
