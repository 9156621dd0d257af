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
    /// `.` in a piece matches any one character (see [`Pattern::template`]).
    dot_any: bool,
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
            pieces: pieces(&norm),
            fold_case,
            dot_any: false,
        }
    }

    /// A resource URI as servers' template matching may meet it: each `{...}` expression
    /// as `*` and each `.` as any one character, as the Python SDK's FastMCP compiles a
    /// template into a regular expression without escaping its text (a template
    /// `docs://{name}.md` runs `docs://secret.md`'s handler for `docs://secretXmd`). Never
    /// exact, so it ranks below a rule written for the very URI.
    pub fn template(text: &str) -> Pattern {
        let mut glob = String::with_capacity(text.len());
        let mut in_expression = false;
        for c in text.chars() {
            match c {
                '{' => in_expression = true,
                '}' if in_expression => {
                    in_expression = false;
                    glob.push('*');
                }
                _ if in_expression => {}
                _ => glob.push(c),
            }
        }
        Pattern {
            text: text.to_string(),
            pieces: pieces(&glob),
            fold_case: false,
            dot_any: true,
        }
    }

    /// Whether `text` reads differently as a template (it has a `.` or an expression).
    pub fn has_template_reading(text: &str) -> bool {
        text.bytes().any(|b| b == b'.' || b == b'{')
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether it has no `*`.
    pub fn is_exact(&self) -> bool {
        self.pieces.len() == 1 && !self.dot_any
    }

    fn literal_len(&self) -> usize {
        self.pieces.iter().map(String::len).sum()
    }

    /// Whether `s` matches.
    pub fn matches(&self, s: &str) -> bool {
        let folded;
        let s = if self.fold_case {
            folded = crate::names::ascii_lowercase(s);
            folded.as_bytes()
        } else {
            s.as_bytes()
        };
        let piece_at = |s: &[u8], piece: &str| prefix_len(s, piece.as_bytes(), self.dot_any);
        let Some((first, rest)) = self.pieces.split_first() else {
            return s.is_empty();
        };
        let Some(mut at) = piece_at(s, first) else {
            return false;
        };
        let Some((last, middle)) = rest.split_last() else {
            return at == s.len();
        };
        for piece in middle {
            let found = (at..s.len())
                .filter(|&i| s.get(i).is_some_and(|b| b & 0xC0 != 0x80))
                .find_map(|i| Some(i + piece_at(s.get(i..)?, piece)?));
            match found {
                Some(end) => at = end,
                None => return false,
            }
        }
        // The last piece matches as many characters as it has, at the end.
        let mut start = s.len();
        for _ in last.chars() {
            start = match s
                .get(at..start)
                .and_then(|t| t.iter().rposition(|b| b & 0xC0 != 0x80))
            {
                Some(i) => at + i,
                None => return false,
            };
        }
        s.get(start..)
            .and_then(|end| piece_at(end, last))
            .is_some_and(|n| start + n == s.len())
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

/// The literal pieces of a glob between its `*`s. A run of `*` is one: an empty piece
/// between two would have to be found after the last character.
pub(crate) fn pieces(glob: &str) -> Vec<String> {
    let all: Vec<&str> = glob.split('*').collect();
    let last = all.len().saturating_sub(1);
    all.iter()
        .enumerate()
        .filter(|&(i, p)| i == 0 || i == last || !p.is_empty())
        .map(|(_, p)| (*p).to_string())
        .collect()
}

/// The bytes of `s` that `piece` matches at its start; with `dot_any`, each `.` matches
/// any one character.
fn prefix_len(s: &[u8], piece: &[u8], dot_any: bool) -> Option<usize> {
    let mut i = 0;
    for &p in piece {
        let c = *s.get(i)?;
        let any = dot_any && p == b'.';
        if !any && p != c {
            return None;
        }
        i += 1;
        if any {
            while s.get(i).is_some_and(|b| b & 0xC0 == 0x80) {
                i += 1;
            }
        }
    }
    Some(i)
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
        // A run of `*` is one `*`: each matches the empty run too.
        for glob in ["admin**", "**admin", "ad**min", "a***d*min**", "**"] {
            let p = Pattern::new(glob, true);
            assert!(p.matches("admin") && p.matches("ADMIN"), "{glob}");
        }
        assert!(
            Pattern::new("a**b", true).matches("a_x_b")
                && !Pattern::new("a**b", true).matches("ba")
        );
        assert!(Pattern::template("docs://{a}{b}").matches("docs://x"));
        assert_eq!(
            Pattern::new("a**b", true).specificity(&Pattern::new("a*b", true)),
            Ordering::Equal
        );
    }

    #[test]
    fn templates_match_as_servers_compile_them() {
        let p = Pattern::template("docs://secret.md");
        assert!(!p.is_exact());
        for uri in [
            "docs://secret.md",
            "docs://secretXmd",
            "docs://secret\u{e9}md",
        ] {
            assert!(p.matches(uri), "{uri}");
        }
        for uri in [
            "docs://secret.mdx",
            "docs://secret.m",
            "docs://secretmd",
            "xdocs://secret.md",
        ] {
            assert!(!p.matches(uri), "{uri}");
        }
        let p = Pattern::template("users://{id}/secret");
        assert!(p.matches("users://42/secret") && p.matches("users://{id}/secret"));
        assert!(!p.matches("users://42/public"));
        let p = Pattern::template("docs://internal-*.md");
        assert!(p.matches("docs://internal-planXmd") && !p.matches("docs://internal-plan.txt"));
        let p = Pattern::template("a.c*x.z");
        assert!(p.matches("abc--xyz") && p.matches("a.cx.z") && !p.matches("abcxy"));
        assert!(Pattern::has_template_reading("a.b") && !Pattern::has_template_reading("ab/*"));
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
