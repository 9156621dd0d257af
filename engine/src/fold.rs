//! Key and name folding: the reading a lenient server might apply.
//!
//! Two keys that fold to the same sequence may be read as one key by some server behind
//! Envoy (case-insensitive struct matching, NFKC normalisation, stripped control or
//! invisible characters, trimmed whitespace, canonical composition, accent-insensitive
//! collation). Folding here is: drop every whitespace, control and default-ignorable
//! character and every combining mark precomposed letters are made of; map each character
//! whose NFKC form is ASCII to that ASCII text, a precomposed letter to its base letter
//! (`é` and `e\u{301}` are both `e`, as MySQL's default collation compares them), a Hangul
//! syllable to its jamo (its canonical decomposition); case-fold the rest.

use crate::fold_table::{
    BASES, BASE_LETTERS, DELTAS, DIGIT_ZEROS, LOWER, MULTI, RUN, RUNS, SKIPPED,
};

/// The folded characters of `inner`.
pub(crate) struct Folded<I> {
    inner: I,
    /// Remaining ASCII of a multi-character mapping.
    pending: &'static [u8],
    /// Remaining jamo of a Hangul syllable.
    jamo: [Option<char>; 2],
}

impl<I: Iterator<Item = char>> Folded<I> {
    pub(crate) fn new(inner: I) -> Self {
        Folded {
            inner,
            pending: &[],
            jamo: [None; 2],
        }
    }
}

enum Mapping {
    Skip,
    Ascii(u8),
    Multi(&'static [u8]),
    /// A Hangul syllable's leading, vowel and (if any) trailing jamo.
    Jamo(char, char, Option<char>),
    /// A precomposed letter's base letter (already folded).
    Folded(char),
    Other(char),
}

fn map_char(c: char) -> Mapping {
    if c.is_ascii() {
        if c.is_ascii_control() || c == ' ' {
            return Mapping::Skip;
        }
        return Mapping::Ascii(c.to_ascii_lowercase() as u8);
    }
    map_non_ascii(c)
}

// Out of line: every iterator folding characters would carry its own copy of the table
// lookups, and nearly every character folded is ASCII.
#[inline(never)]
fn map_non_ascii(c: char) -> Mapping {
    if c.is_whitespace() || c.is_control() || is_skipped(c) {
        return Mapping::Skip;
    }
    let cp = c as u32;
    let idx = RUNS.partition_point(|&entry| entry >> 15 <= cp);
    if let Some(&entry) = idx.checked_sub(1).and_then(|i| RUNS.get(i)) {
        let off = cp - (entry >> 15);
        if entry & RUN == 0 {
            let start = usize::try_from((entry >> 4) & 0x3ff).unwrap_or(usize::MAX);
            let len = usize::try_from(entry & 0xf).unwrap_or(0);
            if off == 0 {
                if let Some(s) = MULTI.as_bytes().get(start..start.saturating_add(len)) {
                    return Mapping::Multi(s);
                }
            }
        } else if off < (entry >> 7) & 0x7f {
            if let Ok(b) = u8::try_from((entry & 0x7f) + off) {
                return if b == b' ' {
                    Mapping::Skip
                } else {
                    Mapping::Ascii(b)
                };
            }
        }
    }
    if let Some(m) = hangul_jamo(cp) {
        return m;
    }
    let idx = BASES.partition_point(|&entry| entry >> 15 <= cp);
    if let Some(&entry) = idx.checked_sub(1).and_then(|i| BASES.get(i)) {
        if cp - (entry >> 15) < (entry >> 9) & 0x3f {
            let letter = BASE_LETTERS
                .get((entry & 0x1ff) as usize)
                .map(|&l| match u32::from(l) {
                    l @ 0x8000.. => l - 0x8000 + 0x11000,
                    l => l,
                })
                .and_then(char::from_u32);
            if let Some(l) = letter {
                return Mapping::Folded(l);
            }
        }
    }
    Mapping::Other(c)
}

/// The canonical decomposition of a precomposed Hangul syllable (computed, as Unicode
/// defines it, not tabled).
fn hangul_jamo(cp: u32) -> Option<Mapping> {
    const S_BASE: u32 = 0xAC00;
    const T_COUNT: u32 = 28;
    const N_COUNT: u32 = 21 * T_COUNT;
    let s = cp.checked_sub(S_BASE).filter(|s| *s < 19 * N_COUNT)?;
    let l = char::from_u32(0x1100 + s / N_COUNT)?;
    let v = char::from_u32(0x1161 + (s % N_COUNT) / T_COUNT)?;
    let t = (s % T_COUNT != 0)
        .then(|| char::from_u32(0x11A7 + s % T_COUNT))
        .flatten();
    Some(Mapping::Jamo(l, v, t))
}

/// The value of a decimal digit of any script (general category Nd), ASCII included:
/// Python's `int()` and Java's `Integer.parseInt` read `٢٢` and `２２` as 22.
pub(crate) fn decimal_digit(c: char) -> Option<u8> {
    if c.is_ascii_digit() {
        return u8::try_from(c).ok().map(|b| b - b'0');
    }
    let cp = c as u32;
    let idx = DIGIT_ZEROS.partition_point(|&half| u32::from(half) << 1 <= cp);
    let zero = u32::from(*idx.checked_sub(1).and_then(|i| DIGIT_ZEROS.get(i))?) << 1;
    u8::try_from(cp - zero).ok().filter(|d| *d < 10)
}

/// The simple case-folded form of a non-ASCII character (from the generated table).
fn lower(c: char) -> char {
    let cp = c as u32;
    let idx = LOWER.partition_point(|&e| e >> 15 <= cp);
    if let Some(&e) = idx.checked_sub(1).and_then(|i| LOWER.get(i)) {
        let count = (e >> 1) & 0x7f;
        let stride = (e & 1) + 1;
        let off = cp - (e >> 15);
        let delta = DELTAS.get(((e >> 8) & 0x7f) as usize).copied().unwrap_or(0);
        if off % stride == 0 && off / stride < count {
            if let Some(l) = cp.checked_add_signed(delta).and_then(char::from_u32) {
                return l;
            }
        }
    }
    c
}

/// Every character whose simple case folding is another character, as runs: for each
/// `(first, count, stride, delta)`, `first + k * stride` folds to itself plus `delta` for
/// `k < count` (`A`–`Z` to `a`–`z`, the Kelvin sign to `k`, `Σ` and `ς` to `σ`).
/// Characters fold to one another exactly when their foldings are equal, which is what
/// `(?i)` in a pattern reads.
pub(crate) fn each_case_folding(f: &mut dyn FnMut(u32, u32, u32, i32)) {
    f(u32::from(b'A'), 26, 1, 32);
    for &e in &LOWER {
        let delta = DELTAS.get(((e >> 8) & 0x7f) as usize).copied().unwrap_or(0);
        f(e >> 15, (e >> 1) & 0x7f, (e & 1) + 1, delta);
    }
}

/// Whether folding drops `c`: a default-ignorable character or a combining mark.
fn is_skipped(c: char) -> bool {
    let cp = c as u32;
    let idx = SKIPPED.partition_point(|&(start, _)| start <= cp);
    idx.checked_sub(1)
        .and_then(|i| SKIPPED.get(i))
        .is_some_and(|&(_, end)| cp <= end)
}

impl<I: Iterator<Item = char>> Iterator for Folded<I> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        loop {
            if let Some((&b, rest)) = self.pending.split_first() {
                self.pending = rest;
                if b == b' ' {
                    continue;
                }
                return Some(char::from(b.to_ascii_lowercase()));
            }
            if let Some(j) = self.jamo[0].take() {
                self.jamo = [self.jamo[1].take(), None];
                return Some(j);
            }
            match map_char(self.inner.next()?) {
                Mapping::Skip => {}
                Mapping::Ascii(b) => return Some(char::from(b.to_ascii_lowercase())),
                Mapping::Multi(s) => self.pending = s,
                Mapping::Jamo(l, v, t) => {
                    self.jamo = [Some(v), t];
                    return Some(l);
                }
                Mapping::Folded(c) => return Some(c),
                Mapping::Other(c) => return Some(lower(c)),
            }
        }
    }
}

/// Text as a server that normalises it (NFKC, NFC or NFD, dropping invisible characters
/// and marks) may read it, case kept where the text has it: `ｓｅｃｒｅｔ` and `ſecret` are
/// `secret`, `e\u{301}` and `é` are `e`. `None` for ASCII text, which reads as itself.
/// Characters mapped to ASCII come lower case, so a pattern may match more than the
/// normalised text would: a possible match only. With `compatible_only`, only characters
/// whose NFKC form is ASCII are mapped, to that form, case kept (`＜` is `<`, `ＤＲＯＰ` is
/// `DROP`); letters, marks and invisible characters stay as NFKC keeps them (`Zürich` reads
/// as itself).
pub(crate) fn normalised_reading(text: &str, compatible_only: bool) -> Option<String> {
    if text.is_ascii() {
        return None;
    }
    let lower = |b: u8| match compatible_only {
        true => b,
        false => b.to_ascii_lowercase(),
    };
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
            continue;
        }
        match map_non_ascii(c) {
            // `ß` and `ẞ` fold to `ss`, but NFKC keeps them.
            _ if compatible_only && matches!(c, 'ß' | 'ẞ') => out.push(c),
            // NFKC keeps the case (`ＤＲＯＰ` is `DROP`); the other reading lower-cases it.
            Mapping::Ascii(b) => out.push(char::from(lower(b))),
            Mapping::Multi(m) => out.extend(m.iter().map(|&b| char::from(lower(b)))),
            _ if compatible_only => out.push(c),
            Mapping::Skip => {}
            Mapping::Jamo(l, v, t) => out.extend([Some(l), Some(v), t].into_iter().flatten()),
            Mapping::Folded(c) | Mapping::Other(c) => out.push(c),
        }
    }
    Some(out)
}

/// Whether two character sequences fold to the same key.
pub(crate) fn fold_eq(a: impl Iterator<Item = char>, b: impl Iterator<Item = char>) -> bool {
    Folded::new(a).eq(Folded::new(b))
}

/// A member name's characters as a lenient server may match them against another's:
/// folded and without any ASCII character but letters and digits, as servers that map
/// snake_case, kebab-case and camelCase onto one field read them (pydantic's alias
/// generators with `populate_by_name`, key-casing middleware such as lodash's `camelCase`,
/// which splits words at every other ASCII character, in front of a JavaScript handler):
/// `file_path`, `filePath`, `file-path` and `_file.path_` are all `filepath`.
pub(crate) fn alias_chars(name: impl Iterator<Item = char>) -> impl Iterator<Item = char> {
    Folded::new(name).filter(|c| !c.is_ascii() || c.is_ascii_alphanumeric())
}

/// The alias key of `name` (see [`alias_chars`]): two names may be one field to a lenient
/// server when their keys are equal.
pub(crate) fn alias_key(name: &str) -> String {
    alias_chars(name.chars()).collect()
}

/// Whether the ASCII name `raw` has alias key `key`, without the fold tables: folding
/// ASCII drops controls and spaces and lower-cases the rest, and the alias keeps letters
/// and digits.
pub(crate) fn ascii_alias_eq(raw: &[u8], key: &str) -> bool {
    let mut key = key.bytes();
    raw.iter()
        .filter(|c| c.is_ascii_alphanumeric())
        .all(|c| key.next() == Some(c.to_ascii_lowercase()))
        && key.next().is_none()
}

/// Whether two ASCII names have the same alias key (see [`alias_chars`]).
pub(crate) fn ascii_alias_same(a: &[u8], b: &[u8]) -> bool {
    let mut b = b
        .iter()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(u8::to_ascii_lowercase);
    a.iter()
        .filter(|c| c.is_ascii_alphanumeric())
        .all(|c| b.next() == Some(c.to_ascii_lowercase()))
        && b.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folded(s: &str) -> String {
        Folded::new(s.chars()).collect()
    }

    #[test]
    fn argument_aliases() {
        for alias in [
            "filePath",
            "file-path",
            "FILE_PATH",
            "filepath",
            "file\u{ff3f}path",
            "_file.path_",
            "file@path",
            "[file]path",
        ] {
            assert_eq!(alias_key(alias), "filepath", "{alias}");
        }
        assert_eq!(alias_key("f\u{fc}r"), "fur");
        assert_eq!(
            alias_key("\u{43a}\u{43b}\u{44e}\u{447}"),
            "\u{43a}\u{43b}\u{44e}\u{447}"
        );
        assert!(!fold_eq("file_path".chars(), "filePath".chars()));
        assert_ne!(alias_key("file_paths"), alias_key("file_path"));
    }

    #[test]
    fn ascii_aliases_match_the_folded_key() {
        let names = [
            "file_path",
            "filePath",
            "FILE-PATH",
            " file path ",
            "file\u{7f}path",
            "file\tpath",
            "file__path",
            "filepat",
            "file_paths",
            "_-",
            "",
            "Path",
            "a.b",
            "ab",
            "A_B!",
            "file.path",
            "Ünïcode",
        ];
        for a in names {
            for b in names {
                if a.is_ascii() {
                    assert_eq!(
                        ascii_alias_eq(a.as_bytes(), &alias_key(b)),
                        alias_key(a) == alias_key(b),
                        "{a:?} against {b:?}"
                    );
                    if b.is_ascii() {
                        assert_eq!(
                            ascii_alias_same(a.as_bytes(), b.as_bytes()),
                            alias_key(a) == alias_key(b),
                            "{a:?} against {b:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn ascii_case_controls_and_whitespace() {
        assert_eq!(folded("Method"), "method");
        assert_eq!(folded(" name\u{0}"), "name");
        assert_eq!(folded("na\tme\u{7f}"), "name");
        assert_eq!(folded("cache_cas"), "cache_cas");
    }

    #[test]
    fn compatibility_forms() {
        // Full-width, mathematical, ligature, long s, Kelvin sign, circled.
        assert_eq!(folded("\u{ff4e}\u{ff41}\u{ff4d}\u{ff45}"), "name");
        assert_eq!(folded("\u{1d427}ame"), "name");
        assert_eq!(folded("\u{fb01}le"), "file");
        assert_eq!(folded("\u{17f}ecret"), "secret");
        assert_eq!(folded("\u{212a}ey"), "key");
        assert_eq!(folded("\u{24dd}ame"), "name");
    }

    #[test]
    fn invisible_characters_vanish() {
        assert_eq!(folded("na\u{200b}me"), "name");
        assert_eq!(folded("\u{feff}name"), "name");
        assert_eq!(folded("name\u{e0041}"), "name");
        assert_eq!(folded("name\u{3000}"), "name");
    }

    #[test]
    fn precomposed_letters_read_as_their_base_letters() {
        // NFC and NFD spellings, and accents an accent-insensitive collation ignores.
        assert_eq!(folded("Jos\u{e9}"), "jose");
        assert_eq!(folded("JOSE\u{301}"), "jose");
        assert_eq!(folded("Prive\u{301}"), folded("PRIV\u{c9}"));
        assert!(fold_eq("\u{3b1}\u{301}".chars(), "\u{386}".chars()));
        assert!(fold_eq("\u{439}".chars(), "\u{438}\u{306}".chars()));
        assert!(fold_eq("\u{304c}".chars(), "\u{304b}\u{3099}".chars()));
        // Java's equalsIgnoreCase and toUpperCase read the dotless and dotted i as i.
        assert_eq!(folded("adm\u{131}n"), "admin");
        assert_eq!(folded("ADM\u{130}N"), "admin");
        // Full case folding where it is one letter: final sigma is sigma.
        assert!(fold_eq(
            "\u{3c3}\u{3bf}\u{3c6}\u{3bf}\u{3c2}".chars(),
            "\u{3a3}\u{39f}\u{3a6}\u{39f}\u{3a3}".chars()
        ));
        // A Hangul syllable is its jamo.
        assert!(fold_eq(
            "\u{be44}\u{bc00}".chars(),
            "\u{1107}\u{1175}\u{1106}\u{1175}\u{11af}".chars()
        ));
        assert!(!fold_eq("\u{be44}".chars(), "\u{bc00}".chars()));
        // Letters without marks stay apart.
        assert!(!fold_eq("\u{438}".chars(), "\u{43a}".chars()));
        assert!(!fold_eq("jose".chars(), "josa".chars()));
    }

    #[test]
    fn decimal_digits_of_every_script() {
        for (c, d) in [
            ('7', 7),
            ('\u{667}', 7),
            ('\u{96d}', 7),
            ('\u{ff17}', 7),
            ('\u{1d7d5}', 7),
        ] {
            assert_eq!(decimal_digit(c), Some(d), "{c}");
        }
        for c in [
            'a',
            '\u{b2}',
            '\u{2166}',
            '\u{665}'.to_ascii_uppercase(),
            '\u{3007}',
        ] {
            assert_eq!(decimal_digit(c).is_some(), c == '\u{665}', "{c}");
        }
    }

    #[test]
    fn other_letters_lower_case() {
        assert_eq!(folded("ÞÐ"), "þð");
        assert_eq!(folded("ÉTÉ"), "ete");
        assert_eq!(folded("ΣΑ"), "σα");
        assert!(fold_eq("Ключ".chars(), "ключ".chars()));
        assert!(!fold_eq("ключ".chars(), "key".chars()));
    }
}
