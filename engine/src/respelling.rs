//! Tool and prompt names as a lenient server may respell them.
//!
//! Some servers find a tool by a respelling of the name they are sent: a Python dispatcher
//! doing `getattr(self, name.replace("-", "_"))`, a JavaScript one passing it through
//! `camelCase` or `snakeCase`, a registry that ignores separators. Argument keys and
//! methods are already read that way; a name is too, so `cache-cas`, `cacheCas` and
//! `CacheCAS` cannot dodge a rule written for `cache_cas`.
//!
//! A name is judged as sent first. Its respellings then add what they meet: the rules of
//! every exact entry whose name has the same letters and digits (the *bare* form); for each
//! *word* form, of the name as sent and lower-cased first (a server may split `dRop-users`
//! at its camelCase, or look it up lower-cased as `drop_users`), the most specific glob
//! matching it unless an exact entry has that word form; and any hiding a form meets. They
//! only ever add denials and counted limits, never take one away.

use crate::names::{is_listable_name, is_tool_name, NameKey};
use crate::pattern::{most_specific, Pattern};
use crate::policy::Rules;

/// `name`'s letters and digits, lower-cased: `cache_cas`, `Cache-CAS` and `cachecas` are
/// all `cachecas`.
pub fn bare(name: &str) -> String {
    NameKey::letters(name).map_or_else(String::new, |k| k.as_str().to_string())
}

/// `name`'s words, lower-cased and joined by `_`. Words end at `_`, `-` and `.`, where
/// camelCase starts one (`cacheCas`, `HTTPServer`), and between letters and digits (as
/// lodash's `words` and pydantic's `to_snake` split them: `admin2faReset` is
/// `admin_2_fa_reset`, as is `admin_2fa_reset`): `cache-cas`, `cacheCas` and `Cache.CAS`
/// are all `cache_cas`. A glob's `*` stays in place (`delete-*` is `delete_*`),
/// so globs keep matching whole words: `delete_*` does not take `deleted_items`.
pub fn words(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    let mut split = false;
    let mut prev = 0u8;
    let mut bytes = name.bytes().peekable();
    while let Some(c) = bytes.next() {
        if matches!(c, b'_' | b'-' | b'.') {
            split = true;
            prev = c;
            continue;
        }
        if (c.is_ascii_digit() && prev.is_ascii_alphabetic())
            || (c.is_ascii_alphabetic() && prev.is_ascii_digit())
        {
            split = true;
        }
        if c.is_ascii_uppercase() {
            let next_lower = bytes.peek().is_some_and(u8::is_ascii_lowercase);
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                split = true;
            }
        }
        if split && !out.is_empty() {
            out.push('_');
        }
        split = false;
        out.push(char::from(c.to_ascii_lowercase()));
        prev = c;
    }
    out
}

/// `name`'s word forms: as sent (`dRop-users` is `d_rop_users`) and lower-cased first
/// (`drop_users`).
fn word_forms(name: &str) -> [String; 2] {
    let w = words(name);
    let lower = match name.bytes().any(|b| b.is_ascii_uppercase()) {
        true => words(&name.to_ascii_lowercase()),
        false => w.clone(),
    };
    [w, lower]
}

/// A surface's entries and hidden names indexed by respelling.
#[derive(Clone, Debug, Default)]
pub struct Respellings {
    /// Exact entries by bare name, sorted.
    exact: Vec<(String, usize)>,
    /// By entry: an exact entry's word forms (a glob's: empty).
    exact_words: Vec<[String; 2]>,
    /// Glob entries by word form, in policy order.
    globs: Vec<(Pattern, usize)>,
    /// Exact hidden names, bare.
    hide_exact: Vec<String>,
    /// Hidden globs by word form.
    hide_globs: Vec<Pattern>,
    /// By entry: an exact entry no respelling of its own name meets anything else by
    /// (nearly every entry: a call naming it needs no second look).
    lone: Vec<bool>,
}

/// What the respellings of one name meet.
pub struct Met<'a> {
    /// Exact entries sharing the name's bare form.
    exact: &'a [(String, usize)],
    /// By word form, the most specific glob matching it, where no exact entry has it.
    globs: [Option<usize>; 2],
    /// Whether either form is hidden.
    pub hidden: bool,
}

impl<'a> Met<'a> {
    /// The indexes of the entries met.
    pub fn entries(&self) -> impl Iterator<Item = usize> + 'a {
        let (exact, globs) = (self.exact, self.globs);
        exact
            .iter()
            .map(|(_, i)| *i)
            .chain(globs.into_iter().flatten())
    }
}

impl Respellings {
    /// Indexes `entries` and `hide` (tool or prompt names and globs).
    pub fn new(entries: &[Rules], hide: &[Pattern]) -> Respellings {
        let mut r = Respellings::default();
        for (i, e) in entries.iter().enumerate() {
            r.exact_words.push(match e.pattern.is_exact() {
                true => word_forms(&e.name),
                false => Default::default(),
            });
            if e.pattern.is_exact() {
                if is_listable_name(&e.name) {
                    r.exact.push((bare(&e.name), i));
                }
            } else {
                r.globs.push((Pattern::new(&words(&e.name), true), i));
            }
        }
        for p in hide {
            if p.is_exact() {
                if is_listable_name(p.as_str()) {
                    r.hide_exact.push(bare(p.as_str()));
                }
            } else {
                r.hide_globs.push(Pattern::new(&words(p.as_str()), true));
            }
        }
        crate::sort::heapsort(&mut r.exact, |a, b| a.0 < b.0);
        crate::sort::heapsort(&mut r.hide_exact, |a, b| a < b);
        let no_globs = r.globs.is_empty() && r.hide_globs.is_empty();
        r.lone = vec![false; entries.len()];
        for (pos, (key, i)) in r.exact.iter().enumerate() {
            let shared = |p: Option<usize>| {
                p.and_then(|p| r.exact.get(p))
                    .is_some_and(|(other, _)| other == key)
            };
            let lone = no_globs
                && !shared(pos.checked_sub(1))
                && !shared(pos.checked_add(1))
                && r.hide_exact.binary_search(key).is_err();
            if let Some(slot) = r.lone.get_mut(*i) {
                *slot = lone;
            }
        }
        r
    }

    /// Whether the respellings of a name that meets exact `entry` as sent (in any case)
    /// meet nothing more: its bare form is the entry's, which no other entry, hidden name
    /// or glob shares.
    pub fn add_nothing_to(&self, entry: usize) -> bool {
        self.lone.get(entry).copied().unwrap_or(false)
    }

    /// The most specific glob entry matching one of `name`'s word forms.
    pub fn word_glob(&self, name: &str) -> Option<usize> {
        if self.globs.is_empty() || !is_tool_name(name) {
            return None;
        }
        word_forms(name)
            .iter()
            .find_map(|w| most_specific(&self.globs, w).map(|(_, i)| *i))
    }

    /// What the respellings of `name` meet; `None` unless it is a valid tool name, or one
    /// a policy may list exactly (`cache/delete`, which an aggregator may route to
    /// `cache_delete`: it meets exact entries and hidden names by its letters and digits,
    /// never a glob).
    pub fn meet(&self, name: &str) -> Option<Met<'_>> {
        let tool_name = is_tool_name(name);
        if !tool_name && !is_listable_name(name) {
            return None;
        }
        let letters = NameKey::letters(name)?;
        let key = letters.as_bytes();
        let start = self.exact.partition_point(|(n, _)| n.as_bytes() < key);
        let matching = self.exact.get(start..).unwrap_or_default();
        let exact = matching
            .get(
                ..matching
                    .iter()
                    .take_while(|(n, _)| n.as_bytes() == key)
                    .count(),
            )
            .unwrap_or_default();
        let mut globs = [None; 2];
        let mut hidden = self
            .hide_exact
            .binary_search_by(|h| h.as_bytes().cmp(key))
            .is_ok();
        if tool_name && (!self.globs.is_empty() || !self.hide_globs.is_empty()) {
            let forms = word_forms(name);
            let n = if forms[0] == forms[1] { 1 } else { 2 };
            for (glob, w) in globs.iter_mut().zip(&forms).take(n) {
                let own = |(_, i): &(String, usize)| {
                    self.exact_words.get(*i).is_some_and(|f| f.contains(w))
                };
                if !exact.iter().any(own) {
                    *glob = most_specific(&self.globs, w).map(|(_, i)| *i);
                }
                hidden |= self.hide_globs.iter().any(|p| p.matches(w));
            }
            if globs[0] == globs[1] {
                globs[1] = None;
            }
        }
        Some(Met {
            exact,
            globs,
            hidden,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_and_word_forms() {
        for name in [
            "cache_cas",
            "cache-cas",
            "cacheCas",
            "Cache.CAS",
            "CACHE_CAS",
            "__cache__cas",
        ] {
            assert_eq!(bare(name), "cachecas", "{name}");
            assert_eq!(words(name), "cache_cas", "{name}");
        }
        assert_eq!(words("HTTPServer"), "http_server");
        assert_eq!(words("getHTTP"), "get_http");
        // Between letters and digits too: libraries split there differently (pydantic's
        // `to_snake` makes `admin2faReset` `admin_2fa_reset`, lodash `admin_2_fa_reset`),
        // so every such split is one form.
        assert_eq!(words("v2Api"), "v_2_api");
        for name in [
            "admin2faReset",
            "admin_2fa_reset",
            "admin2FaReset",
            "Admin-2-FA-Reset",
        ] {
            assert_eq!(words(name), "admin_2_fa_reset", "{name}");
        }
        assert!(Pattern::new(&words("admin_*"), true).matches(&words("admin2faReset")));
        assert_eq!(words("delete-*"), "delete_*");
        assert_eq!(words("*Delete"), "*delete");
        assert_eq!(words("cachecas"), "cachecas");
    }

    #[test]
    fn globs_keep_matching_whole_words() {
        let p = Pattern::new(&words("delete_*"), true);
        assert!(p.matches(&words("deleteAll")) && p.matches(&words("delete-all")));
        assert!(!p.matches(&words("deleted_items")));
    }
}
