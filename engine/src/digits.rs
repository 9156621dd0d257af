//! Numbers as decimal text without the formatting machinery, for text built on every
//! counted call (shared-data keys, `RateLimit` headers): `write!` costs more there than
//! the rest of the work. And digits read into a number without an overflow-checked 64-bit
//! multiply, which on wasm32 is a call to a 128-bit multiplication routine.

/// `v * radix + digit`, or `None` past `u64::MAX` (or for radix 0). The bound is checked
/// before multiplying, so the multiply itself cannot overflow.
#[inline]
pub(crate) fn shift_in(v: u64, radix: u64, digit: u64) -> Option<u64> {
    if v > u64::MAX.checked_div(radix)? {
        return None;
    }
    v.wrapping_mul(radix).checked_add(digit)
}

/// Appends `n` in decimal.
pub(crate) fn push_decimal(out: &mut String, n: u64) {
    // Filled from the end, then appended at once: a push per digit costs a capacity check
    // and a UTF-8 encoding each.
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = n;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (rest % 10) as u8;
        start -= 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if let Some(Ok(s)) = digits.get(start..).map(std::str::from_utf8) {
        out.push_str(s);
    }
}

/// Appends `n` in decimal, with a `-` when negative.
pub(crate) fn push_signed(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    push_decimal(out, n.unsigned_abs());
}

/// An integer in decimal for `format!`, as `{n}` writes it, through [`push_decimal`]: core's
/// `Display` for each integer type is a few hundred bytes of the module.
pub(crate) struct DecimalText(u64);

impl DecimalText {
    pub(crate) fn of(n: u64) -> DecimalText {
        DecimalText(n)
    }
}

impl std::fmt::Display for DecimalText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        push_decimal(&mut s, self.0);
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn shifting_in_a_digit_is_a_checked_multiply_and_add() {
        let values = [0, 1, 9, 10, u64::MAX / 16, u64::MAX / 10 - 1, u64::MAX / 10];
        for v in values.into_iter().chain([u64::MAX / 10 + 1, u64::MAX]) {
            for radix in [0, 2, 8, 10, 16] {
                for digit in [0, 1, 5, 9, 15] {
                    let want = if radix == 0 {
                        None
                    } else {
                        v.checked_mul(radix).and_then(|m| m.checked_add(digit))
                    };
                    assert_eq!(
                        super::shift_in(v, radix, digit),
                        want,
                        "{v} {radix} {digit}"
                    );
                }
            }
        }
    }

    #[test]
    fn writes_what_format_writes() {
        for n in [0, 7, 10, 99, 1_000_000, u64::from(u32::MAX), u64::MAX] {
            let mut s = String::from("x");
            super::push_decimal(&mut s, n);
            assert_eq!(s, format!("x{n}"));
            assert_eq!(super::DecimalText::of(n).to_string(), n.to_string());
        }
        for n in [0, -1, 7, -10, 99, i64::MAX, i64::MIN] {
            let mut s = String::from("x");
            super::push_signed(&mut s, n);
            assert_eq!(s, format!("x{n}"));
        }
    }
}
