//! Typed, path-aware readers over the configuration's JSON: each reports what it found and
//! what it expected, and returns `None` so loading can go on and report everything.

use super::path::Path;
use super::problems::Problems;
use crate::digits::push_signed;
use crate::json::{Kind, Value};
use std::fmt::Write as _;

/// At most this many characters of a found value are quoted in a message.
const QUOTE_MAX: usize = 60;

/// A found value as it reads in a message: its JSON text, shortened.
pub(crate) fn quote(v: Value<'_>) -> String {
    let raw = v.raw();
    if raw.chars().count() <= QUOTE_MAX {
        return raw.to_string();
    }
    let mut s: String = raw.chars().take(QUOTE_MAX).collect();
    s.push_str("...");
    s
}

/// `s`, then each of `rest`: messages built without the format machinery.
pub(crate) fn then(mut s: String, rest: &[&str]) -> String {
    for r in rest {
        s.push_str(r);
    }
    s
}

/// `v` quoted as [`quote`] does, then `rest`.
pub(crate) fn quote_then(v: Value<'_>, rest: &[&str]) -> String {
    then(quote(v), rest)
}

/// "`v` is a string" and the like: `v` quoted, then the kind of JSON value it is.
pub(crate) fn is_kind(v: Value<'_>) -> String {
    quote_then(v, &[" is ", v.kind().name()])
}

/// `a, b or c`
pub(crate) fn one_of(names: &[&str]) -> String {
    let mut out = String::new();
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            out.push_str(if i + 1 == names.len() { " or " } else { ", " });
        }
        let _ = write!(out, "{n}");
    }
    out
}

/// An object's members, after checking every key is a known field.
pub(crate) struct Fields<'a> {
    members: Vec<(String, Value<'a>)>,
}

impl<'a> Fields<'a> {
    /// The member `name`, if present.
    pub(crate) fn get(&self, name: &str) -> Option<Value<'a>> {
        self.members
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| *v)
    }

    /// Whether the member `name` is present.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// Reads an object whose keys must all be in `known`.
pub(crate) fn fields<'a>(
    v: Value<'a>,
    path: &Path,
    what: &str,
    known: &[&str],
    problems: &mut Problems,
) -> Option<Fields<'a>> {
    if v.kind() != Kind::Object {
        problems.push(path, is_kind(v), then(what.into(), &[" (an object)"]));
        return None;
    }
    let mut members = Vec::new();
    for (k, value) in v.members() {
        let key = k.decode().into_owned();
        if !known.contains(&key.as_str()) {
            problems.push(
                &path.key(&key),
                "unknown field",
                then("one of ".into(), &[&one_of(known)]),
            );
            continue;
        }
        members.push((key, value));
    }
    Some(Fields { members })
}

/// A required member: reports it missing.
pub(crate) fn required<'a>(
    f: &Fields<'a>,
    path: &Path,
    name: &str,
    expected: &str,
    problems: &mut Problems,
) -> Option<Value<'a>> {
    let v = f.get(name);
    if v.is_none() {
        problems.push(&path.key(name), "missing", expected);
    }
    v
}

/// A string.
pub(crate) fn string(
    v: Value<'_>,
    path: &Path,
    expected: &str,
    problems: &mut Problems,
) -> Option<String> {
    match v.as_str() {
        Some(s) => Some(s.decode().into_owned()),
        None => {
            problems.push(path, is_kind(v), expected);
            None
        }
    }
}

/// One of a fixed set of strings: `"minutes" is not a window; expected second, minute, hour or day`.
pub(crate) fn choice<T: Copy>(
    v: Value<'_>,
    path: &Path,
    what: &str,
    options: &[(&str, T)],
    problems: &mut Problems,
) -> Option<T> {
    let at = pick(
        v,
        path,
        what,
        &|i| options.get(i).map(|(n, _)| *n),
        problems,
    )?;
    options.get(at).map(|(_, t)| *t)
}

/// The position of `v` among the names `name` gives for 0, 1, ... (up to the first
/// `None`), or a problem: the part of [`choice`] that does not depend on its type,
/// compiled once (the names are gathered here, not in each instance of [`choice`]).
fn pick<'n>(
    v: Value<'_>,
    path: &Path,
    what: &str,
    name: &dyn Fn(usize) -> Option<&'n str>,
    problems: &mut Problems,
) -> Option<usize> {
    let mut names = Vec::new();
    while let Some(n) = name(names.len()) {
        names.push(n);
    }
    let found = v
        .as_str()
        .and_then(|s| names.iter().position(|n| s.eq_str(n)));
    if found.is_none() {
        not_a_choice(v, path, what, &names, problems);
    }
    found
}

/// The problem of a value that is none of `names` (not generic: [`choice`] is
/// instantiated per option type).
fn not_a_choice(v: Value<'_>, path: &Path, what: &str, names: &[&str], problems: &mut Problems) {
    let expected = if v.as_str().is_some() {
        one_of(names)
    } else {
        // `1` for `"1"`: say that it must be text.
        let mut quoted = String::from("a string, ");
        for (i, n) in names.iter().enumerate() {
            if i > 0 {
                quoted.push_str(if i + 1 == names.len() { " or " } else { ", " });
            }
            quoted.push('"');
            quoted.push_str(n);
            quoted.push('"');
        }
        quoted
    };
    problems.push(path, quote_then(v, &[" is not ", what]), expected);
}

/// An integer in `min..=max`.
pub(crate) fn integer(
    v: Value<'_>,
    path: &Path,
    min: i64,
    max: i64,
    problems: &mut Problems,
) -> Option<i64> {
    let mut expected = String::from(if max == i64::MAX {
        "an integer >= "
    } else {
        "an integer from "
    });
    push_signed(&mut expected, min);
    if max != i64::MAX {
        expected.push_str(" to ");
        push_signed(&mut expected, max);
    }
    let int = v
        .as_number()
        .filter(|n| !n.raw().bytes().any(|b| matches!(b, b'.' | b'e' | b'E')))
        .map(|n| n.raw().parse::<i64>());
    match int {
        Some(Ok(i)) if (min..=max).contains(&i) => Some(i),
        Some(_) => {
            problems.push(path, quote_then(v, &[" is out of range"]), expected);
            None
        }
        None => {
            problems.push(path, quote_then(v, &[" is not an integer"]), expected);
            None
        }
    }
}

/// A boolean.
pub(crate) fn boolean(v: Value<'_>, path: &Path, problems: &mut Problems) -> Option<bool> {
    let b = v.as_bool();
    if b.is_none() {
        problems.push(path, quote_then(v, &[" is not a boolean"]), "true or false");
    }
    b
}

/// An array; its elements with their paths.
pub(crate) fn array<'a>(
    v: Value<'a>,
    path: &Path,
    expected: &str,
    problems: &mut Problems,
) -> Option<Vec<(Path, Value<'a>)>> {
    if v.kind() != Kind::Array {
        problems.push(path, is_kind(v), expected);
        return None;
    }
    let mut out = Vec::new();
    for e in v.elements() {
        out.push((path.index(out.len()), e));
    }
    Some(out)
}
