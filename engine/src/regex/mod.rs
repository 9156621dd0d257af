//! Regular expressions for `regex` conditions: regex-lite's syntax (the `regex` crate's,
//! with ASCII-only Perl classes and no Unicode classes), compiled at configure time into an
//! automaton searched in time linear in the haystack. `(?i)` folds every cased letter by
//! Unicode's simple case folding, as Go's RE2 (PolicyLayer's) does: `(?i)пароль` matches
//! `ПАРОЛЬ`, where regex-lite folds ASCII letters only.
//!
//! Ours rather than regex-lite's because a condition only asks yes or no: no captures,
//! spans or match priorities to track, and none of the crate's capture-name map, hashing,
//! sorting and error formatting in the module (60 KB of the 253 KB it was, measured
//! 2026-12-06 with `scripts/build-module`). The differential test against regex-lite
//! (`tests/regex_differential.rs`) holds the two to the same answers, and where `(?i)` meets
//! text outside ASCII, holds ours to the full `regex` crate's.
//!
//! Where the two differ, ours accepts more and reads it as written: a hex escape of a
//! letter as a class range's end under `(?i)` (`(?i)[\x41-Z]`), and a range across both
//! cases under `(?i)` folds each part (`(?i)[Z-a]` matches `z`). Under `(?i)` a Perl or
//! POSIX class folds before it is negated, as in RE2 and the `regex` crate: `(?i)\w` holds
//! the Kelvin sign (it folds with `k`), `(?i)\W` does not, and `(?i)[[:^lower:]]` holds no
//! letter (regex-lite's holds every letter). Ours refuses a capture
//! group name with letters or digits outside ASCII (`(?<é1>x)`), as Go's RE2 syntax does
//! (PolicyLayer's gateway is written in Go): Unicode's letter tables would cost the module
//! 2.9 KB for names a condition never reads.

mod class;
mod parse;
mod program;

use program::Program;
pub use program::{budget, exhausted};
use std::fmt;

/// Why a pattern was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error(&'static str);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A compiled regular expression.
#[derive(Clone, Debug)]
pub struct Regex {
    source: String,
    program: Program,
}

impl Regex {
    /// Compiles `pattern`; refuses what the syntax does not have, groups nested more than
    /// 64 deep and patterns of more than 8,192 steps once repetitions are expanded.
    pub fn new(pattern: &str) -> Result<Regex, Error> {
        let parsed = parse::parse(pattern)?;
        Ok(Regex {
            source: pattern.to_owned(),
            program: Program::compile(parsed)?,
        })
    }

    /// Whether the expression matches anywhere in `haystack` (anchor with `^…$`).
    pub fn is_match(&self, haystack: &str) -> bool {
        self.program.is_match(haystack)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn m(pattern: &str, haystack: &str) -> bool {
        Regex::new(pattern).unwrap().is_match(haystack)
    }

    #[test]
    fn matches_what_policies_write() {
        assert!(m("^/etc", "/etc/passwd") && !m("^/etc", "/home/etc"));
        assert!(m("^(22|23)$", "23") && !m("^(22|23)$", "223"));
        assert!(m(
            "(?i)BEGIN [A-Z ]*PRIVATE KEY",
            "-----begin rsa private key"
        ));
        assert!(m(r"\bDROP\s+TABLE\b", "x; DROP  TABLE users") && !m(r"\bDROP\b", "DROPS"));
        assert!(m(r"^\d{3}-\d{4}$", "555-1234") && !m(r"^\d{3}-\d{4}$", "55-1234"));
        assert!(m("a{2,}?b", "xaab") && !m("^a{2,3}$", "aaaa") && m("^a{2,3}$", "aaa"));
        assert!(m("", "") && m("", "x") && !m(r"[^\s\S]", "x"));
        assert!(m("(?m)^b$", "a\nb\nc") && !m("^b$", "a\nb\nc"));
        assert!(m("(?mR)^b$", "a\r\nb\r\nc") && !m("(?m)^b$", "a\r\nb\r\nc"));
        assert!(m("(?s)a.b", "a\nb") && !m("a.b", "a\nb") && m("a.b", "aéb"));
        assert!(m(r"(?x) a \  b # comment", "a b"));
        assert!(m(r"[[:^alpha:][:digit:]]", "-") && !m(r"^[[:alpha:]]+$", "ab1"));
        assert!(m(r"\x{1F4A9}|\u00e9", "é") && m(r"(?<name>x)(?P<other>y)", "xy"));
        assert!(m(r"\b{start}go\b{end}", "to go now") && !m(r"\<go\>", "gone"));
    }

    #[test]
    fn case_insensitive_patterns_fold_every_cased_letter() {
        assert!(m("(?i)пароль", "ПАРОЛЬ") && m("(?i)ΣΟΦΙΑ", "σοφια") && m("(?i)σ", "ς"));
        assert!(m("(?i)secret", "\u{17f}ecret") && m("(?i)kelvin", "\u{212a}elvin"));
        assert!(m("(?i)[а-я]+$", "ЖЖ") && !m("(?i)[^а-я]", "ЖЖ") && !m("пароль", "ПАРОЛЬ"));
        // Perl classes fold before they are negated, as in Go's RE2: the Kelvin sign and the
        // long s fold with word characters.
        assert!(m(r"(?i)\w", "\u{212a}") && m(r"(?i)\w", "\u{17f}") && !m(r"\w", "\u{17f}"));
        assert!(!m(r"(?i)\W", "\u{212a}") && !m(r"(?i)[\W]", "k") && !m(r"(?i)[^\w]", "\u{17f}"));
        assert!(m(r"\W", "\u{212a}") && m(r"(?i)[[:upper:]]", "\u{212a}"));
        // So do POSIX classes (regex-lite negates them first: its `(?i)[[:^lower:]]` holds `a`).
        for h in ["k", "\u{212a}", "s", "a", "Z"] {
            assert!(
                !m("(?i)[[:^alpha:]]", h) && !m("(?i)[[:^lower:]]", h),
                "{h}"
            );
        }
        assert!(m("(?i)[[:^alpha:]]", "1") && m("[[:^lower:]]", "A"));
    }

    #[test]
    fn classes_are_bounded_even_where_a_repetition_drops_them() {
        // Each class may cost a fold at configure time; `x{0}` compiles to nothing.
        let many = format!("(?i){}", "x{0}".repeat(9000));
        assert_eq!(
            Regex::new(&many).unwrap_err().to_string(),
            "too many classes"
        );
        assert!(Regex::new(&format!("(?i){}", "x{0}".repeat(8000))).is_ok());
    }

    #[test]
    fn refuses_with_reasons() {
        for bad in [
            "(unclosed",
            "a)",
            "*a",
            "a{2",
            "a{3,2}",
            r"\1",
            r"\p{L}",
            "(?=a)",
            "[a",
            "[z-a]",
            "(?<n>a)(?<n>b)",
            "(?)",
            "(?-)",
            "(?ii)",
            "(?q)",
            r"\e",
            r"\x{110000}",
            "[a--b]",
            "[[a]]",
            r"[\b]",
            "x{4294967296}",
        ] {
            assert!(Regex::new(bad).is_err(), "{bad:?}");
        }
        let deep = format!("{}a{}", "(".repeat(70), ")".repeat(70));
        assert!(Regex::new(&deep).is_err());
        assert!(Regex::new(&format!("a{}", "*".repeat(100))).is_err());
        // Stacked repetitions compile to one copy each, not twice as many per level.
        assert!(m(&format!("^a{}$", "+".repeat(60)), "aaa"));
        assert!(m(&format!("^(?:a{}b)+$", "+".repeat(30)), "aabab"));
        assert!(Regex::new("(?:a{1000}){1000}").is_err());
        // Repetitions of nothing compile at once, however large.
        assert!(m("(?:){4000000000}x", "x") && m("(?:(?:){4000000000}){4000000000}", ""));
    }
}
