//! Name patterns: an exact name, or a glob where `*` matches any run of characters.
//!
//! Precedence, when several entries match one name: an exact entry wins; otherwise the most
//! specific glob, the one with the most literal (non-`*`) characters; on a tie the one with
//! fewer `*`; on a further tie, the one written first. Matching is ASCII-case-insensitive
//! for tool and prompt names and exact for resource URIs.

use std::cmp::Ordering;

/// A compiled pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    /// The literal pieces between `*`s (`a*b*` is `["a", "b", ""]`).
    pieces: Vec<String>,
    fold_case: bool,
}

impl Pattern {
    /// Compiles `text`; `fold_case` for names that match case-insensitively.
    pub fn new(text: &str, fold_case: bool) -> Pattern {
        let norm = if fold_case {
            text.to_ascii_lowercase()
        } else {
            text.to_string()
        };
        Pattern {
            text: text.to_string(),
            pieces: norm.split('*').map(str::to_string).collect(),
            fold_case,
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether it has no `*`.
    pub fn is_exact(&self) -> bool {
        self.pieces.len() == 1
    }

    fn literal_len(&self) -> usize {
        self.pieces.iter().map(String::len).sum()
    }

    /// Whether `s` matches.
    pub fn matches(&self, s: &str) -> bool {
        let folded;
        let s = if self.fold_case {
            folded = crate::names::ascii_lowercase(s);
            &*folded
        } else {
            s
        };
        let Some((first, rest)) = self.pieces.split_first() else {
            return s.is_empty();
        };
        let Some(mut tail) = s.strip_prefix(first.as_str()) else {
            return false;
        };
        let Some((last, middle)) = rest.split_last() else {
            return tail.is_empty();
        };
        for piece in middle {
            match crate::substring::find(tail.as_bytes(), piece.as_bytes()) {
                Some(i) => tail = tail.get(i + piece.len()..).unwrap_or(""),
                None => return false,
            }
        }
        tail.len() >= last.len() && tail.ends_with(last.as_str())
    }

    /// Orders matching patterns from most to least specific.
    pub fn specificity(&self, other: &Pattern) -> Ordering {
        other
            .is_exact()
            .cmp(&self.is_exact())
            .then(other.literal_len().cmp(&self.literal_len()))
            .then(self.pieces.len().cmp(&other.pieces.len()))
    }
}

/// The entry that governs `name` among `entries` (by the precedence above).
pub fn most_specific<'a, T>(entries: &'a [(Pattern, T)], name: &str) -> Option<&'a (Pattern, T)> {
    let mut best: Option<&(Pattern, T)> = None;
    for e in entries {
        if !e.0.matches(name) {
            continue;
        }
        best = match best {
            Some(b) if b.0.specificity(&e.0) != Ordering::Greater => Some(b),
            _ => Some(e),
        };
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match() {
        let p = Pattern::new("cache_*", true);
        assert!(p.matches("cache_get") && p.matches("CACHE_get") && p.matches("cache_"));
        assert!(!p.matches("cach_get"));
        let p = Pattern::new("*_delete", true);
        assert!(p.matches("cache_delete") && !p.matches("cache_deleted"));
        let p = Pattern::new("a*b*c", true);
        assert!(p.matches("abc") && p.matches("a123b456c") && !p.matches("acb"));
        let p = Pattern::new("ab*ab", true);
        assert!(p.matches("abab") && !p.matches("aba"));
        let p = Pattern::new("*", true);
        assert!(p.matches("") && p.matches("anything"));
        let p = Pattern::new("file:///secret/*", false);
        assert!(p.matches("file:///secret/a/b") && !p.matches("FILE:///secret/a"));
        assert!(Pattern::new("exact", true).matches("EXACT"));
    }

    #[test]
    fn precedence() {
        let entries = vec![
            (Pattern::new("*", true), "star"),
            (Pattern::new("cache_*", true), "cache"),
            (Pattern::new("cache_de*", true), "cache_de"),
            (Pattern::new("cache_delete", true), "exact"),
            (Pattern::new("*_delete", true), "suffix"),
            (Pattern::new("c*e*", true), "two stars"),
        ];
        let pick = |n: &str| most_specific(&entries, n).map(|e| e.1);
        assert_eq!(pick("cache_delete"), Some("exact"));
        assert_eq!(pick("cache_dex"), Some("cache_de"));
        assert_eq!(pick("cache_get"), Some("cache"));
        assert_eq!(pick("db_delete"), Some("suffix"));
        assert_eq!(pick("zzz"), Some("star"));
        // Same literal length: fewer stars wins; then the first written.
        let tie = vec![
            (Pattern::new("a*b*", true), 1),
            (Pattern::new("*ab", true), 2),
            (Pattern::new("ab*", true), 3),
        ];
        assert_eq!(most_specific(&tie, "ab").map(|e| e.1), Some(2));
    }
}
