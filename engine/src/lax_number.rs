//! The number a lax server reads in a string: pydantic's lax mode (`" +0_22 "`, `"22.0"`)
//! and JavaScript's `Number()` (`"0x16"`, `"0b10110"`, `" 2.2e1 "`, `"022"`), as a JSON
//! number text, so that conditions on a number also meet it spelled as a string.

use crate::digits::{push_decimal, shift_in};

/// Longest string read: longer ones are no port, count or id a condition compares.
const MAX_LEN: usize = 64;

/// The JSON text of the number `s` reads as to some lax server, if any.
pub fn lax_number(s: &str) -> Option<String> {
    // Python's `Decimal()` also strips U+001C-U+001F, JavaScript's `Number()` a BOM.
    let t = s.trim_matches(|c: char| {
        c.is_whitespace() || c == '\u{feff}' || ('\u{1c}'..='\u{1f}').contains(&c)
    });
    if t.is_empty() || t.len() > MAX_LEN {
        return None;
    }
    // Digits of other scripts (`٢٢`, `２２`) are digits to Python's int() and float() and
    // Java's parseInt; nothing else outside ASCII is part of a number.
    let mut ascii = String::new();
    let t = if t.is_ascii() {
        t
    } else {
        for c in t.chars() {
            ascii.push(match crate::fold::decimal_digit(c) {
                Some(d) => char::from(b'0' + d),
                None if c.is_ascii() => c,
                None => return None,
            });
        }
        &ascii
    };
    let b = t.as_bytes();
    // JavaScript's prefixed integers (no sign, no underscores).
    if let (Some(b'0'), Some(p)) = (b.first(), b.get(1)) {
        let radix = match p.to_ascii_lowercase() {
            b'x' => 16,
            b'b' => 2,
            b'o' => 8,
            _ => 0,
        };
        if radix != 0 {
            let mut n: u64 = 0;
            let digits = b.get(2..).unwrap_or(&[]);
            if digits.is_empty() {
                return None;
            }
            for &c in digits {
                let d = u64::from(char::from(c).to_digit(radix)?);
                n = shift_in(n, u64::from(radix), d)?;
            }
            let mut s = String::new();
            push_decimal(&mut s, n);
            return Some(s);
        }
    }
    let (negative, rest) = match b.first() {
        Some(b'-') => (true, b.get(1..).unwrap_or(&[])),
        Some(b'+') => (false, b.get(1..).unwrap_or(&[])),
        _ => (false, b),
    };
    // Underscores only between digits, as Python reads them.
    let mut out = String::with_capacity(rest.len() + 2);
    let mut prev = b'_';
    for (i, &c) in rest.iter().enumerate() {
        if c == b'_' {
            let next = rest.get(i + 1).copied().unwrap_or(b'_');
            if !prev.is_ascii_digit() || !next.is_ascii_digit() {
                return None;
            }
        } else {
            out.push(char::from(c));
        }
        prev = c;
    }
    // Leading zeros go; a bare fraction or point gains its zero ("5." and ".5").
    let trimmed = out.trim_start_matches('0');
    let mut text = String::with_capacity(trimmed.len() + 3);
    if negative {
        text.push('-');
    }
    if trimmed.is_empty() || !trimmed.starts_with(|c: char| c.is_ascii_digit()) {
        text.push('0');
    }
    text.push_str(trimmed);
    if let Some(point) = text.find('.') {
        if !text
            .as_bytes()
            .get(point + 1)
            .is_some_and(u8::is_ascii_digit)
        {
            text.insert(point + 1, '0');
        }
    }
    crate::json::Number::parse(&text).is_some().then_some(text)
}

#[cfg(test)]
mod tests {
    use super::lax_number;

    #[test]
    fn spellings_lax_servers_read_as_numbers() {
        for (s, n) in [
            ("22", "22"),
            ("022", "22"),
            ("+22", "22"),
            ("2_2", "22"),
            (" 23 ", "23"),
            ("  +0_22\n", "22"),
            ("22.0", "22.0"),
            ("2.2e1", "2.2e1"),
            ("0x16", "22"),
            ("0B10110", "22"),
            ("0o26", "22"),
            ("-07", "-7"),
            ("0", "0"),
            ("000", "0"),
            ("5.", "5.0"),
            (".5", "0.5"),
            ("-0", "-0"),
            ("\u{662}\u{662}", "22"),
            ("0\u{966}\u{968}", "2"),
            ("\u{ff12}\u{ff12}", "22"),
            ("-\u{1d7d0}.5", "-2.5"),
            ("\u{1c}22", "22"),
            ("22\u{1f}", "22"),
            ("\u{feff}0x16", "22"),
        ] {
            assert_eq!(lax_number(s).as_deref(), Some(n), "{s}");
        }
        for s in [
            "", "x", "2__2", "_22", "22_", "0x", "0x1g", "1e", "--1", "+-1", "0x-1", "nan",
            "\u{b2}", "\u{2162}", "1\u{301}",
        ] {
            assert_eq!(lax_number(s), None, "{s}");
        }
    }
}
