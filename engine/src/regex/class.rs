//! Sets of characters: what one step of a pattern may consume.

use crate::sort::heapsort;

/// A set of Unicode scalar values as sorted, disjoint, non-adjacent inclusive ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Class {
    ranges: Vec<(u32, u32)>,
}

const MAX: u32 = char::MAX as u32;

impl Class {
    /// The set of the given ranges (in any order, overlapping or not).
    pub(super) fn of(ranges: Vec<(u32, u32)>) -> Class {
        let mut class = Class { ranges };
        class.canonicalize();
        class
    }

    /// One character.
    pub(super) fn single(c: char) -> Class {
        Class {
            ranges: vec![(c as u32, c as u32)],
        }
    }

    /// Adds the ranges of `other` (canonicalized later, by `canonicalize`).
    pub(super) fn extend(&mut self, other: &Class) {
        self.ranges.extend_from_slice(&other.ranges);
    }

    /// Adds one range (canonicalized later, by `canonicalize`).
    pub(super) fn push(&mut self, lo: char, hi: char) {
        self.ranges.push((lo as u32, hi as u32));
    }

    /// Adds every character that case-folds with a member (`k` brings `K` and the Kelvin
    /// sign `K`), from Unicode's simple case folding, as Go's RE2 reads `(?i)`.
    pub(super) fn fold_case(&mut self) {
        // The members' foldings first, then every character whose folding is a member; run
        // by run of the table, so a literal costs a few hundred steps, not one per letter.
        for backwards in [false, true] {
            let mut extra = Vec::new();
            crate::fold::each_case_folding(&mut |first, count, stride, delta| {
                let (start, shift) = match backwards {
                    false => (first, delta),
                    true => (first.wrapping_add_signed(delta), -delta),
                };
                let end = start.saturating_add(count.saturating_sub(1).saturating_mul(stride));
                let i = self.ranges.partition_point(|&(_, hi)| hi < start);
                for &(lo, hi) in self.ranges.get(i..).unwrap_or_default() {
                    if lo > end {
                        break;
                    }
                    // The run's first character in the range, then every stride-th.
                    let mut c =
                        start.saturating_add(lo.saturating_sub(start).div_ceil(stride) * stride);
                    while c <= hi.min(end) {
                        let other = c.wrapping_add_signed(shift);
                        // A big class holds most of its members' cases already.
                        if !self.contains_u32(other) {
                            extra.push((other, other));
                        }
                        c = c.saturating_add(stride);
                    }
                }
            });
            self.ranges.extend(extra);
            self.canonicalize();
        }
    }

    /// Every scalar value not in the set (surrogates are never a `char`, so including them
    /// changes nothing).
    pub(super) fn negate(&mut self) {
        let mut out = Vec::with_capacity(self.ranges.len() + 1);
        let mut next = 0u32;
        for &(lo, hi) in &self.ranges {
            if lo > next {
                out.push((next, lo - 1));
            }
            next = hi.saturating_add(1);
        }
        if next <= MAX && self.ranges.last().is_none_or(|&(_, hi)| hi < MAX) {
            out.push((next, MAX));
        }
        self.ranges = out;
    }

    /// Whether `c` is in the set.
    pub(super) fn contains(&self, c: char) -> bool {
        self.contains_u32(c as u32)
    }

    fn contains_u32(&self, c: u32) -> bool {
        let i = self.ranges.partition_point(|&(_, hi)| hi < c);
        self.ranges.get(i).is_some_and(|&(lo, _)| lo <= c)
    }

    /// The only character of a one-character set.
    pub(super) fn as_single(&self) -> Option<char> {
        match self.ranges.as_slice() {
            [(lo, hi)] if lo == hi => char::from_u32(*lo),
            _ => None,
        }
    }

    /// Sorts and merges the ranges.
    pub(super) fn canonicalize(&mut self) {
        heapsort(&mut self.ranges, |a, b| a < b);
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(self.ranges.len());
        for &(lo, hi) in &self.ranges {
            match out.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => out.push((lo, hi)),
            }
        }
        self.ranges = out;
    }
}

/// An ASCII class by its POSIX name (`alpha`, `digit`, …), as ranges.
pub(super) fn posix(name: &str) -> Option<Class> {
    let ranges: &[(u8, u8)] = match name {
        "alnum" => &[(b'0', b'9'), (b'A', b'Z'), (b'a', b'z')],
        "alpha" => &[(b'A', b'Z'), (b'a', b'z')],
        "ascii" => &[(0, 0x7f)],
        "blank" => &[(b'\t', b'\t'), (b' ', b' ')],
        "cntrl" => &[(0, 0x1f), (0x7f, 0x7f)],
        "digit" => &[(b'0', b'9')],
        "graph" => &[(b'!', b'~')],
        "lower" => &[(b'a', b'z')],
        "print" => &[(b' ', b'~')],
        "punct" => &[(b'!', b'/'), (b':', b'@'), (b'[', b'`'), (b'{', b'~')],
        "space" => &[(b'\t', b'\r'), (b' ', b' ')],
        "upper" => &[(b'A', b'Z')],
        "word" => &[(b'0', b'9'), (b'A', b'Z'), (b'_', b'_'), (b'a', b'z')],
        "xdigit" => &[(b'0', b'9'), (b'A', b'F'), (b'a', b'f')],
        _ => return None,
    };
    Some(Class::of(
        ranges
            .iter()
            .map(|&(lo, hi)| (u32::from(lo), u32::from(hi)))
            .collect(),
    ))
}

/// ASCII word characters (`\w`), which word boundaries are made of.
pub(super) fn is_word(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn negation_and_folding() {
        let mut c = Class::of(vec![(0x62, 0x63), (0x61, 0x61), (0x7a, 0x7a)]);
        assert_eq!(c.ranges, vec![(0x61, 0x63), (0x7a, 0x7a)]);
        c.fold_case();
        assert!(c.contains('B') && c.contains('Z') && !c.contains('D'));
        c.negate();
        assert!(!c.contains('a') && c.contains('d') && c.contains(char::MAX));
        let mut all = Class::of(vec![(0, MAX)]);
        all.negate();
        assert!(all.ranges.is_empty());
        all.negate();
        assert_eq!(all.ranges, vec![(0, MAX)]);
        // A range across both cases folds each part.
        let mut zed = Class::of(vec![(u32::from(b'Z'), u32::from(b'a'))]);
        zed.fold_case();
        assert!(zed.contains('z') && zed.contains('A'));
    }

    fn theirs(ranges: &[(u32, u32)]) -> Vec<(u32, u32)> {
        use regex_syntax::hir::{ClassUnicode, ClassUnicodeRange};
        let c = |v: u32| char::from_u32(v).unwrap();
        let mut class = ClassUnicode::new(
            ranges
                .iter()
                .map(|&(lo, hi)| ClassUnicodeRange::new(c(lo), c(hi))),
        );
        class.case_fold_simple();
        class
            .ranges()
            .iter()
            .map(|r| (r.start() as u32, r.end() as u32))
            .collect()
    }

    /// regex-syntax's tables follow Unicode 16.0, ours 14.0 (Go's RE2 follows 15.0): the
    /// pairs added since (Latin Extended-D's, Garay's, and Greek `ΐ` and `ΰ` with their
    /// compatibility twins) fold there only.
    fn since_unicode_14(c: u32) -> bool {
        matches!(
            c,
            0xA7CB..=0xA7CD
                | 0xA7DA..=0xA7DC
                | 0x10D50..=0x10D85
                | 0x0264
                | 0x019B
                | 0x0390
                | 0x03B0
                | 0x1FD3
                | 0x1FE3
                | 0xFB05
                | 0xFB06
        )
    }

    #[test]
    fn every_character_folds_with_the_characters_regex_syntax_folds_it_with() {
        let mut orbits: std::collections::BTreeMap<u32, Vec<u32>> = Default::default();
        crate::fold::each_case_folding(&mut |first, count, stride, delta| {
            for c in (0..count).map(|k| first + k * stride) {
                let folded = c.checked_add_signed(delta).unwrap();
                orbits.entry(folded).or_insert_with(|| vec![folded]).push(c);
            }
        });
        let mut cased = Vec::new();
        for (_, orbit) in orbits {
            let ours = Class::of(orbit.iter().map(|&c| (c, c)).collect());
            for &c in &orbit {
                let mut one = Class::single(char::from_u32(c).unwrap());
                one.fold_case();
                assert_eq!(one, ours, "the orbit of U+{c:04X}");
                cased.push((c, c));
                if !orbit.iter().any(|&c| since_unicode_14(c)) {
                    assert_eq!(theirs(&[(c, c)]), ours.ranges, "U+{c:04X}");
                }
            }
        }
        // Every other character folds with nothing, here and in regex-syntax.
        let mut uncased = Class::of(cased);
        uncased.negate();
        assert_eq!(theirs(&uncased.ranges), uncased.ranges);
    }

    #[test]
    fn folded_ranges_match_regex_syntaxs() {
        // Ranges across Latin, Greek, Cyrillic, Cherokee, Roman numerals and fullwidth forms.
        for ranges in [
            vec![(0x41, 0x5a)],
            vec![(0x6b, 0x6b), (0x73, 0x73)],
            vec![(0xc0, 0x24f)],
            vec![(0x370, 0x3ff)],
            vec![(0x3c2, 0x3c2), (0x3d1, 0x3d1)],
            vec![(0x400, 0x4ff)],
            vec![(0x13a0, 0x13f5), (0xab70, 0xab7f)],
            vec![(0x1e00, 0x1fff)],
            vec![(0x2126, 0x2183)],
            vec![(0x24b6, 0x24e9)],
            vec![(0xff21, 0xff5a)],
            vec![(0x10400, 0x1044f)],
            vec![(0x0, 0x7f)],
            vec![(0x80, 0xffff)],
        ] {
            let mut ours = Class::of(ranges.clone());
            ours.fold_case();
            let mut theirs = theirs(&ranges);
            theirs.retain(|&(lo, hi)| !(lo..=hi).all(since_unicode_14));
            assert_eq!(ours.ranges, theirs, "{ranges:x?}");
        }
    }
}
