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

    /// Adds the other ASCII case of every ASCII letter in the set.
    pub(super) fn fold_ascii_case(&mut self) {
        let mut extra = Vec::new();
        for &(lo, hi) in &self.ranges {
            for (from, to, delta) in [(0x61, 0x7a, -32i64), (0x41, 0x5a, 32)] {
                let (a, b) = (lo.max(from), hi.min(to));
                if a <= b {
                    // Within ASCII letters: the shifted bounds stay in range.
                    extra.push(((a as i64 + delta) as u32, (b as i64 + delta) as u32));
                }
            }
        }
        self.ranges.extend(extra);
        self.canonicalize();
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
        let c = c as u32;
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
        c.fold_ascii_case();
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
        zed.fold_ascii_case();
        assert!(zed.contains('z') && zed.contains('A'));
    }
}
