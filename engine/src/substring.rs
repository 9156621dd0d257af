//! Substring search in linear time (Knuth–Morris–Pratt), for glob pieces, `contains`
//! conditions and every other search for a string in the module's code. `str::find` or
//! `str::contains` with a string pattern, even once, links the standard library's two-way
//! searcher: 7 KB of module (measured 2026-12-07: 251,360 bytes with one such call left,
//! 244,362 without). This is a few hundred bytes and, like it, never takes more than a pass
//! over the text whatever the needle (an agent chooses the text, and a quadratic search
//! over a 1 MiB argument would be a way to burn a worker's CPU).

/// The byte offset of the first occurrence of `needle` in `hay` (0 for an empty needle).
/// On text, a match of a whole UTF-8 needle always starts at a character boundary.
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    // border[i]: the length of the longest proper prefix of needle[..=i] that is also its
    // suffix, where the search resumes after a mismatch.
    let mut border = vec![0usize; needle.len()];
    let mut k = 0;
    for (i, &c) in needle.iter().enumerate().skip(1) {
        k = resume(needle, &border, k, c);
        if let Some(b) = border.get_mut(i) {
            *b = k;
        }
    }
    let mut matched = 0;
    for (i, &c) in hay.iter().enumerate() {
        matched = resume(needle, &border, matched, c);
        if matched == needle.len() {
            return Some(i + 1 - matched);
        }
    }
    None
}

/// How much of `needle` is matched after `c`, when `k` bytes of it were.
fn resume(needle: &[u8], border: &[usize], mut k: usize, c: u8) -> usize {
    loop {
        if needle.get(k) == Some(&c) {
            return k + 1;
        }
        if k == 0 {
            return 0;
        }
        k = border.get(k - 1).copied().unwrap_or(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn std_find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len().max(1))
            .position(|w| w == needle)
            .or(if needle.is_empty() { Some(0) } else { None })
    }

    #[test]
    fn finds_what_str_find_finds() {
        for (hay, needle) in [
            ("cache_delete", "delete"),
            ("aaaaab", "aab"),
            ("abababc", "ababc"),
            ("abc", ""),
            ("", "a"),
            ("ab", "abc"),
            ("caf\u{e9}\u{e9}", "\u{e9}\u{e9}"),
            ("xx\u{1f600}y", "\u{1f600}y"),
        ] {
            assert_eq!(
                find(hay.as_bytes(), needle.as_bytes()),
                hay.find(needle),
                "{hay} {needle}"
            );
        }
    }

    #[test]
    fn matches_a_naive_search_on_every_short_text() {
        // Every haystack up to 9 bytes and needle up to 5 over a two-letter alphabet, where
        // borders (the part a linear search gets wrong first) are everywhere.
        let words = |max: usize| {
            (0..=max).flat_map(|n| {
                (0..1u32 << n).map(move |bits| {
                    (0..n)
                        .map(|i| b'a' + ((bits >> i) & 1) as u8)
                        .collect::<Vec<u8>>()
                })
            })
        };
        let needles: Vec<Vec<u8>> = words(5).collect();
        for hay in words(9) {
            for needle in &needles {
                assert_eq!(
                    find(&hay, needle),
                    std_find(&hay, needle),
                    "{hay:?} {needle:?}"
                );
            }
        }
    }
}
