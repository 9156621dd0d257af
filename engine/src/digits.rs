//! Numbers as decimal text without the formatting machinery, for text built on every
//! counted call (shared-data keys, `RateLimit` headers): `write!` costs more there than
//! the rest of the work.

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

#[cfg(test)]
mod tests {
    #[test]
    fn writes_what_format_writes() {
        for n in [0, 7, 10, 99, 1_000_000, u64::from(u32::MAX), u64::MAX] {
            let mut s = String::from("x");
            super::push_decimal(&mut s, n);
            assert_eq!(s, format!("x{n}"));
        }
    }
}
