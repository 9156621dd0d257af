//! Argument conditions (`require`, `deny_if`) and argument paths.
//!
//! Every condition is evaluated under two readings of the arguments: the exact one, and the
//! one a lenient server might make (keys matched after folding case, compatibility forms,
//! whitespace and invisible characters; a string holding a JSON array or object read as
//! that container, as the Python SDK does for any parameter not typed `str`). A value of
//! another type than the condition's literal is one a lax server might coerce into it
//! (pydantic reads `"yes"` as `true` and `"0_5"` as 5; JavaScript's `==` reads `[13]` as
//! 13). `require` passes only if it holds under every reading; `deny_if` triggers if it
//! could hold under any.

use crate::fold::{alias_chars, alias_key, ascii_alias_eq, fold_eq, Folded};
use crate::json::{
    first_after_whitespace, Error, ErrorKind, JsonStr, KeyRule, Kind, Number, Options, Owned,
    OwnedNumber, Validator, Value,
};
use crate::regex::Regex;
use std::cmp::Ordering;

/// A path into a call's `arguments`: `args.a.b.0` (segments after `args`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgPath {
    segments: Vec<Segment>,
    text: String,
}

/// One argument name along a path.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Segment {
    /// As written in the policy.
    name: String,
    /// Its alias key (`fold::alias_key`), worked out once: every call's keys are compared
    /// with it, most of them plain ASCII that then need no trip through the fold tables.
    alias: String,
}

impl ArgPath {
    /// Parses `args.<segment>(.<segment>)*`; `None` if malformed.
    pub fn parse(text: &str) -> Option<ArgPath> {
        let rest = text.strip_prefix("args.")?;
        let segments: Vec<Segment> = rest
            .split('.')
            .map(|name| Segment {
                name: name.to_string(),
                alias: alias_key(name),
            })
            .collect();
        if segments.iter().any(|s| s.name.is_empty()) {
            return None;
        }
        Some(ArgPath {
            segments,
            text: text.to_string(),
        })
    }

    /// The path as written in the policy.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The argument names along the path.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().map(|s| s.name.as_str())
    }

    /// The path without its `args.` prefix, for messages to the agent.
    pub fn argument(&self) -> &str {
        self.text.strip_prefix("args.").unwrap_or(&self.text)
    }

    /// The value at this path under the exact and the folded reading; under neither when an
    /// object on the path has several keys that fold to the segment (the validator allows
    /// that below a call's argument names), as a lenient server may take any of them.
    pub fn resolve<'a>(&self, arguments: Option<Value<'a>>) -> Readings<'a> {
        let mut exact = arguments;
        let mut folded = arguments;
        for seg in &self.segments {
            if let Some(v) = folded {
                let mut keys = v.members().filter(|(k, _)| names(*k, seg, true));
                if keys.nth(1).is_some() {
                    return Readings::default();
                }
            }
            exact = exact.and_then(|v| step(v, seg, false));
            folded = folded.and_then(|v| step(v, seg, true));
        }
        Readings { exact, folded }
    }
}

/// Whether a JSON text the validator refused (with exact keys) is one Python's `json.loads`
/// takes: repeated keys, lone surrogates, deep nesting, `NaN` and `Infinity`. Then no one can
/// tell what the server reads from it.
fn python_parses(text: &[u8], e: Error) -> bool {
    match e.kind {
        ErrorKind::DuplicateKey | ErrorKind::LoneSurrogate | ErrorKind::TooDeep => true,
        ErrorKind::Syntax | ErrorKind::InvalidNumber => text
            .get(e.offset..)
            .map(|t| t.strip_prefix(b"-").unwrap_or(t))
            .is_some_and(|t| t.starts_with(b"NaN") || t.starts_with(b"Infinity")),
        _ => false,
    }
}

/// Whether key `k` names segment `seg`: equal, or (`fold`) equal as a lenient server may
/// read them (folded, and snake_case, kebab-case and camelCase as one).
fn names(k: JsonStr<'_>, seg: &Segment, fold: bool) -> bool {
    if !fold {
        return k.eq_str(&seg.name);
    }
    if k.is_plain() && k.raw().is_ascii() {
        ascii_alias_eq(k.raw().as_bytes(), &seg.alias)
    } else {
        alias_chars(k.chars()).eq(seg.alias.chars())
    }
}

fn step<'a>(v: Value<'a>, seg: &Segment, fold: bool) -> Option<Value<'a>> {
    match v.kind() {
        Kind::Object => v
            .members()
            .find(|(k, _)| names(*k, seg, fold))
            .map(|(_, v)| v),
        Kind::Array => seg
            .name
            .parse::<usize>()
            .ok()
            .and_then(|i| v.elements().nth(i)),
        _ => None,
    }
}

/// A call's arguments as its conditions read them: the members of the object are listed
/// once, not walked again by every condition (each walk re-reads every key and skips every
/// value of the body's text).
pub struct Arguments<'a> {
    /// The `arguments` member, if any.
    value: Option<Value<'a>>,
    /// Its members, in order, when it is an object.
    members: Option<Vec<Member<'a>>>,
    /// Whether a member is named `__proto__` (see [`prototype`]).
    prototypes: bool,
}

/// The object a member named `__proto__` holds: JavaScript's `Object.assign` and
/// `for…in` copies make it the copy's prototype, so a handler reading the copy reads its
/// members as the object's own where the object has none of that name.
fn prototype<'v>((key, value): (JsonStr<'_>, Value<'v>)) -> Option<Value<'v>> {
    (value.kind() == Kind::Object && key.eq_str("__proto__")).then_some(value)
}

/// A member of the arguments, its key classified once.
struct Member<'a> {
    key: JsonStr<'a>,
    value: Value<'a>,
    /// The key is ASCII without escapes (nearly every key): compared as bytes.
    ascii: bool,
}

impl Member<'_> {
    fn named(&self, seg: &Segment, fold: bool) -> bool {
        if !self.ascii {
            names(self.key, seg, fold)
        } else if fold {
            ascii_alias_eq(self.key.raw().as_bytes(), &seg.alias)
        } else {
            self.key.raw() == seg.name
        }
    }
}

impl<'a> Arguments<'a> {
    /// Lists the members of `value` when it is an object.
    pub fn new(value: Option<Value<'a>>) -> Arguments<'a> {
        let members = value.filter(|v| v.kind() == Kind::Object).map(|v| {
            // Room for a typical tool's arguments at once (the walk cannot size them).
            let mut members = Vec::with_capacity(16);
            members.extend(v.members().map(|(key, value)| Member {
                key,
                value,
                ascii: key.is_plain() && key.raw().is_ascii(),
            }));
            members
        });
        let prototypes = members
            .iter()
            .flatten()
            .any(|m| prototype((m.key, m.value)).is_some());
        Arguments {
            value,
            members,
            prototypes,
        }
    }

    /// The exact reading down `segments`.
    fn exact(&self, segments: &[Segment]) -> Option<Value<'a>> {
        let Some((first, rest)) = segments.split_first() else {
            return self.value;
        };
        let top = match &self.members {
            Some(members) => members
                .iter()
                .find(|m| m.named(first, false))
                .map(|m| m.value),
            None => self.value.and_then(|v| step(v, first, false)),
        }?;
        rest.iter().try_fold(top, |v, seg| step(v, seg, false))
    }
}

/// The value a path designates, under each reading.
#[derive(Clone, Copy, Debug, Default)]
pub struct Readings<'a> {
    /// Keys matched exactly.
    pub exact: Option<Value<'a>>,
    /// Keys matched as a lenient server might (a superset of the exact matches).
    pub folded: Option<Value<'a>>,
}

/// An operator with its compiled operand.
#[derive(Clone, Debug)]
pub enum Op {
    /// Equal to the literal.
    Eq(Owned),
    /// Not equal to the literal.
    Neq(Owned),
    /// Equal to one of the literals.
    In(Vec<Owned>),
    /// Equal to none of the literals.
    NotIn(Vec<Owned>),
    /// A number less than.
    Lt(OwnedNumber),
    /// A number less than or equal to.
    Lte(OwnedNumber),
    /// A number greater than.
    Gt(OwnedNumber),
    /// A number greater than or equal to.
    Gte(OwnedNumber),
    /// A string the expression matches.
    Regex(Regex),
    /// A string containing the text, or an array containing an equal element.
    Contains(Owned),
    /// Present (`true`) or absent (`false`).
    Exists(bool),
}

impl Op {
    /// The operator's name in the policy language.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Eq(_) => "eq",
            Op::Neq(_) => "neq",
            Op::In(_) => "in",
            Op::NotIn(_) => "not_in",
            Op::Lt(_) => "lt",
            Op::Lte(_) => "lte",
            Op::Gt(_) => "gt",
            Op::Gte(_) => "gte",
            Op::Regex(_) => "regex",
            Op::Contains(_) => "contains",
            Op::Exists(_) => "exists",
        }
    }
}

/// A compiled condition.
#[derive(Clone, Debug)]
pub struct Condition {
    /// Which argument.
    pub path: ArgPath,
    /// What must hold of it.
    pub op: Op,
    /// The condition's place in the policy (`tools.x.require[0]`), reported in denials.
    pub rule: String,
    /// Values that count as equal to the literals of `eq`, `neq`, `in` and `not_in` (never
    /// shown to the agent): for a condition on a resource's `args.uri`, the server readings
    /// of each URI literal, since the URI is judged under each reading too.
    pub also_equal: Vec<Owned>,
}

/// The outcome of one condition under one reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Truth {
    Holds,
    Fails,
    /// The argument is absent.
    Absent,
    /// A type a lenient server might read differently (a numeric string for a number, a
    /// number where a string was expected).
    Unsure,
}

/// How deep a string's JSON may nest before the reading gives up on it (as unsure): Python
/// parses to about 1,000 levels; deeper than this is rare in legitimate data.
const NESTED_DEPTH: u32 = 128;

impl Condition {
    /// Whether a `require` condition is met: it must hold under every reading.
    pub fn required_holds(&self, arguments: &Arguments<'_>) -> bool {
        !self.any_reading(arguments, &mut |t| t != Truth::Holds)
    }

    /// Whether a `deny_if` condition triggers: it holds, or might, under some reading.
    pub fn deny_triggers(&self, arguments: &Arguments<'_>) -> bool {
        self.any_reading(arguments, &mut |t| {
            matches!(t, Truth::Holds | Truth::Unsure)
        })
    }

    /// Whether `found` is true of the condition's truth under some reading.
    fn any_reading(&self, arguments: &Arguments<'_>, found: &mut dyn FnMut(Truth) -> bool) -> bool {
        let segments = &self.path.segments;
        let exact = arguments.exact(segments);
        if found(self.truth(exact)) {
            return true;
        }
        match (&arguments.members, segments.split_first()) {
            // As `lenient` reads an object, from the listed members.
            (Some(members), Some((seg, rest))) => {
                self.lenient_members(
                    members
                        .iter()
                        .filter(|m| m.named(seg, true))
                        .map(|m| m.value),
                    rest,
                    exact,
                    found,
                ) || (arguments.prototypes
                    && members
                        .iter()
                        .filter_map(|m| prototype((m.key, m.value)))
                        .any(|p| self.lenient(Some(p), segments, exact, found)))
            }
            _ => self.lenient(arguments.value, segments, exact, found),
        }
    }

    /// The lenient reading from `v` down `segments`: every member whose key folds to a
    /// segment (a lenient server may take any), and a string that holds a JSON array,
    /// object or `null` read as well as that value. Strings inside strings are followed to the
    /// end: each level doubles the escapes, so the body's size bounds how deep that goes.
    /// A value equal to `judged` (the exact reading's) is not judged again.
    fn lenient(
        &self,
        v: Option<Value<'_>>,
        segments: &[Segment],
        judged: Option<Value<'_>>,
        found: &mut dyn FnMut(Truth) -> bool,
    ) -> bool {
        // The first byte says whether decoding could give JSON text (`\` may escape it).
        let text = v.and_then(|v| v.as_str()).filter(|s| {
            matches!(
                first_after_whitespace(s.raw().as_bytes()),
                Some(b'[' | b'{' | b'n' | b'\\')
            )
        });
        if let Some(text) = text.map(|s| s.decode()) {
            // The Python SDK reads `"null"` given for a parameter not typed `str` as `None`.
            if matches!(
                first_after_whitespace(text.as_bytes()),
                Some(b'[' | b'{' | b'n')
            ) {
                // Exact keys: this reading takes every member a folded key matches.
                let exact = Options {
                    max_depth: NESTED_DEPTH,
                    keys: KeyRule::Exact,
                };
                // Indexed, so the reading steps over what the check scanned.
                let mut validator = Validator::new();
                let inner = match validator.validate_indexed(text.as_bytes(), exact) {
                    Ok(inner) => self.lenient(Some(inner), segments, judged, found),
                    Err(e) if python_parses(text.as_bytes(), e) => found(Truth::Unsure),
                    // Not JSON to any parser: a string like any other.
                    Err(_) => false,
                };
                if inner {
                    return true;
                }
            }
        }
        let Some((seg, rest)) = segments.split_first() else {
            return v != judged && found(self.truth(v));
        };
        match v {
            Some(o) if o.kind() == Kind::Object => {
                self.lenient_members(
                    o.members()
                        .filter(|(k, _)| names(*k, seg, true))
                        .map(|(_, m)| m),
                    rest,
                    judged,
                    found,
                ) || o
                    .members()
                    .filter_map(prototype)
                    .any(|p| self.lenient(Some(p), segments, judged, found))
            }
            Some(a) if a.kind() == Kind::Array => {
                // Where an object is expected, Jackson's UNWRAP_SINGLE_VALUE_ARRAYS reads
                // a one-element array as its element.
                let mut elements = a.elements();
                let only = match (elements.next(), elements.next()) {
                    (Some(e), None) => Some(e),
                    _ => None,
                };
                self.lenient(step(a, seg, false), rest, judged, found)
                    || only.is_some_and(|e| self.lenient(Some(e), segments, judged, found))
            }
            _ => self.lenient(v.and_then(|v| step(v, seg, false)), rest, judged, found),
        }
    }

    /// The lenient reading on down `rest` from each member whose key folds to the segment
    /// (`named`), or from none when no key does.
    fn lenient_members<'v>(
        &self,
        named: impl Iterator<Item = Value<'v>>,
        rest: &[Segment],
        judged: Option<Value<'_>>,
        found: &mut dyn FnMut(Truth) -> bool,
    ) -> bool {
        let mut any = false;
        for m in named {
            any = true;
            if self.lenient(Some(m), rest, judged, found) {
                return true;
            }
        }
        !any && self.lenient(None, rest, judged, found)
    }

    fn truth(&self, v: Option<Value<'_>>) -> Truth {
        let Some(v) = v else {
            return match self.op {
                Op::Exists(false) => Truth::Holds,
                Op::Exists(true) => Truth::Fails,
                _ => Truth::Absent,
            };
        };
        match &self.op {
            Op::Exists(want) => bool_truth(*want),
            Op::Eq(lit) => self.or_also_equal(equality(lit, v), v),
            Op::Neq(lit) => negate(self.or_also_equal(equality(lit, v), v)),
            Op::In(lits) => self.or_also_equal(membership(lits, v), v),
            Op::NotIn(lits) => negate(self.or_also_equal(membership(lits, v), v)),
            Op::Lt(n) => ordering(n, v, |o| o == Ordering::Less),
            Op::Lte(n) => ordering(n, v, |o| o != Ordering::Greater),
            Op::Gt(n) => ordering(n, v, |o| o == Ordering::Greater),
            Op::Gte(n) => ordering(n, v, |o| o != Ordering::Less),
            Op::Regex(re) => {
                let truth = text_truth(v, &|t| re.is_match(t));
                // Out of steps, a search answers nothing: unsure (see `regex::budget`).
                if crate::regex::exhausted() {
                    Truth::Unsure
                } else {
                    truth
                }
            }
            Op::Contains(lit) => contains(lit, v),
        }
    }
}

impl Condition {
    /// `equal` (whether `v` equals a literal), or equal to one of `also_equal`.
    fn or_also_equal(&self, equal: Truth, v: Value<'_>) -> Truth {
        if equal == Truth::Holds || self.also_equal.is_empty() {
            return equal;
        }
        match membership(&self.also_equal, v) {
            Truth::Fails => equal,
            other => other,
        }
    }
}

fn bool_truth(b: bool) -> Truth {
    if b {
        Truth::Holds
    } else {
        Truth::Fails
    }
}

fn negate(t: Truth) -> Truth {
    match t {
        Truth::Holds => Truth::Fails,
        Truth::Fails => Truth::Holds,
        other => other,
    }
}

/// Equal, unequal, or unsure: what a lax server might coerce into the literal. Numbers a
/// double blurs into one. Into a number or a boolean, any other type (pydantic's lax mode
/// reads `"0_5"` as 5 and `"yes"` as `true`; JavaScript's truthiness takes any non-empty
/// string). Into a string: a number equal to it and an array of one such element (as
/// JavaScript's `==` reads them), or a boolean spelled as it. `null` is no value.
fn equality(lit: &Owned, v: Value<'_>) -> Truth {
    equality_folded(lit, v, None)
}

/// A string value's readings, worked out once when it is compared with many literals
/// (invisible characters the fold drops, or a long path, would otherwise be walked again
/// for each literal).
struct StringForms {
    /// Folded as [`Folded`] folds it.
    folded: String,
    /// As [`crate::uri::path_reading`] reads it.
    path: Option<String>,
    /// As [`lax_reading`] reads it.
    lax: Option<String>,
}

/// [`equality`], with `v`'s readings when it is a string already read.
fn equality_folded(lit: &Owned, v: Value<'_>, forms: Option<&StringForms>) -> Truth {
    let unsure = match (lit, v.kind()) {
        (Owned::Null, Kind::Null) => return Truth::Holds,
        (_, Kind::Null) => null_coerces_to(lit),
        (Owned::Bool(b), Kind::Bool) => return bool_truth(v.as_bool() == Some(*b)),
        (Owned::Number(n), Kind::Number) => match v.as_number() {
            Some(m) if m.compare(n.as_number()).is_eq() => return Truth::Holds,
            m => m.is_some_and(|m| as_integer_near(m, n.as_number())),
        },
        (Owned::Number(_) | Owned::Bool(_), _) => true,
        (Owned::String(s), Kind::Number) => match (Number::parse(s.trim()), v.as_number()) {
            (Some(a), Some(b)) => as_integer_near(b, a),
            _ => false,
        },
        (Owned::String(s), Kind::Bool) => v.raw().eq_ignore_ascii_case(s.trim()),
        // The same text to a server that trims, lower-cases or normalises the value (an
        // e-mail address or host name, a path on a case-insensitive file system, Python's
        // `.strip()`), or a number spelled another way, for a server that takes the
        // argument as a number.
        (Owned::String(s), Kind::String) => {
            if v.as_str().is_some_and(|t| t.eq_str(s)) {
                return Truth::Holds;
            }
            let same = match forms {
                Some(f) => f.folded.chars().eq(Folded::new(s.chars())),
                None => v.as_str().is_some_and(|t| fold_eq(t.chars(), s.chars())),
            };
            // `/etc//passwd/` opens `/etc/passwd`.
            let same_path = || {
                crate::uri::path_reading(s).is_some_and(|p| match forms {
                    Some(f) => f.path.as_ref() == Some(&p),
                    // Read here for each literal: only up to a path's longest, so a long
                    // value in nested arrays costs no more than that.
                    None => {
                        v.raw().len() <= PATH_MAX
                            && v.as_str()
                                .and_then(|t| crate::uri::path_reading(&t.decode()))
                                == Some(p)
                    }
                })
            };
            same || same_path()
                || Number::parse(s.trim()).is_some_and(|a| {
                    match forms {
                        Some(f) => f.lax.clone(),
                        None => lax_reading(v),
                    }
                    .is_some_and(|b| Number::parse(&b).is_some_and(|b| a.near(b)))
                })
        }
        (Owned::String(_), Kind::Array) => {
            let mut e = v.elements();
            e.next()
                .is_some_and(|first| equality_folded(lit, first, forms) != Truth::Fails)
                && e.next().is_none()
        }
        (Owned::Array(_) | Owned::Object(_), kind) if kind == lit.kind() => {
            return containers(lit, v)
        }
        _ => false,
    };
    if unsure {
        Truth::Unsure
    } else {
        Truth::Fails
    }
}

/// Containers as a lax server compares them: elements in order, members by folded name (a
/// pydantic model ignores members it does not declare), each pair by [`equality`]. Equal
/// when every pair is, under the same names, none left over; unsure when every pair may
/// be. A value past [`LAX_CONTAINER_BYTES`] is not walked: unsure.
fn containers(lit: &Owned, v: Value<'_>) -> Truth {
    if v.raw().len() > LAX_CONTAINER_BYTES {
        return Truth::Unsure;
    }
    let mut truth = Truth::Holds;
    let matched = match lit {
        Owned::Array(items) => {
            let mut e = v.elements();
            items.iter().all(|i| {
                let t = e.next().map_or(Truth::Fails, |x| equality(i, x));
                if t == Truth::Unsure {
                    truth = t;
                }
                t != Truth::Fails
            }) && e.next().is_none()
        }
        Owned::Object(members) => {
            if v.members().count() != members.len() {
                truth = Truth::Unsure;
            }
            members.iter().all(|(k, lit)| {
                let seg = Segment {
                    name: k.clone(),
                    alias: alias_key(k),
                };
                let mut best = Truth::Fails;
                for (key, x) in v.members() {
                    if names(key, &seg, true) {
                        match equality(lit, x) {
                            Truth::Holds if key.eq_str(k) => {
                                best = Truth::Holds;
                                break;
                            }
                            Truth::Fails => {}
                            _ => best = Truth::Unsure,
                        }
                    }
                }
                if best == Truth::Unsure {
                    truth = best;
                }
                best != Truth::Fails
            })
        }
        _ => false,
    };
    if matched {
        truth
    } else {
        Truth::Fails
    }
}

/// The longest path Linux opens (`PATH_MAX`): a longer string is not read as a path for
/// each literal it is compared with.
const PATH_MAX: usize = 4096;

/// The size of an array or object past which it is not compared member by member with a
/// container literal (each member may be walked once per literal member): such a value
/// is unsure.
const LAX_CONTAINER_BYTES: usize = 4096;

/// Whether a server may read number `m` as `lit`: a double blurs them, or binding `m` to
/// an integer makes it `lit` (`0.5` is 0 to Go's mcp-go and Jackson, see
/// [`Number::truncated`]).
fn as_integer_near(m: Number<'_>, lit: Number<'_>) -> bool {
    m.near(lit)
        || m.truncated()
            .is_some_and(|t| Number::parse(&t).is_some_and(|t| t.near(lit)))
}

/// What lax servers make of `null`: JavaScript's `Number(null)` is 0, zod's coerced
/// boolean `false`, its coerced string `"null"` (Python's `str` gives `"None"`), and Ajv's
/// type coercion `""`.
fn null_coerces_to(lit: &Owned) -> bool {
    match lit {
        Owned::Number(n) => Number::parse("0").is_some_and(|z| z.near(n.as_number())),
        Owned::Bool(b) => !b,
        Owned::String(s) => s.is_empty() || s.eq_ignore_ascii_case("null") || s == "None",
        _ => false,
    }
}

/// The number a lax server reads in a string value, as JSON number text.
fn lax_reading(v: Value<'_>) -> Option<String> {
    v.as_str()
        .and_then(|s| crate::lax_number::lax_number(&s.decode()))
}

fn membership(lits: &[Owned], v: Value<'_>) -> Truth {
    // A number is read whole for each literal: past any integer or double's length, unsure.
    if lits.len() > 1 && v.kind() == Kind::Number && v.raw().len() > 64 {
        return Truth::Unsure;
    }
    // A string, or the first of an array's (one string is read as that string).
    let forms = (lits.len() > 1)
        .then(|| {
            v.as_str()
                .or_else(|| v.elements().next().and_then(|e| e.as_str()))
        })
        .flatten()
        .map(|t| {
            let text = t.decode();
            // Only the readings some literal can meet (most lists are plain words).
            let wants =
                |of: fn(&str) -> bool| lits.iter().any(|l| matches!(l, Owned::String(s) if of(s)));
            StringForms {
                folded: Folded::new(t.chars()).collect(),
                path: wants(|s| s.contains('/'))
                    .then(|| crate::uri::path_reading(&text))
                    .flatten(),
                lax: wants(|s| Number::parse(s.trim()).is_some())
                    .then(|| crate::lax_number::lax_number(&text))
                    .flatten(),
            }
        });
    let mut truth = Truth::Fails;
    for lit in lits {
        match equality_folded(lit, v, forms.as_ref()) {
            Truth::Holds => return Truth::Holds,
            Truth::Unsure => truth = Truth::Unsure,
            _ => {}
        }
    }
    truth
}

/// Exact comparison, unless a double could blur the two numbers into equal ones and that
/// would change the answer. Another type is unsure (a lax server may coerce it), and so is
/// `null` where 0 would satisfy the comparison: a server that checks no schema and compares
/// or computes in JavaScript reads `null` as 0 (`null < 1` is true).
fn ordering(n: &OwnedNumber, v: Value<'_>, accept: impl Fn(Ordering) -> bool) -> Truth {
    let lit = n.as_number();
    let Some(m) = v.as_number() else {
        let zero = Number::parse("0").is_some_and(|z| accept(z.compare(lit)));
        return if v.is_null() && !zero {
            Truth::Fails
        } else {
            Truth::Unsure
        };
    };
    let exact = accept(m.compare(lit));
    // Bound to an integer, `0.5` is 0 and `1e19` the most negative int64 to Go's mcp-go.
    let cut = m.truncated();
    let cut_differs = cut
        .as_deref()
        .and_then(Number::parse)
        .is_some_and(|t| accept(t.compare(lit)) != exact);
    if cut_differs || (m.near(lit) && accept(Ordering::Equal) != exact) {
        Truth::Unsure
    } else {
        bool_truth(exact)
    }
}

fn contains(lit: &Owned, v: Value<'_>) -> Truth {
    // An array with an equal element.
    let mut truth = Truth::Fails;
    for e in v.elements() {
        match equality(lit, e) {
            Truth::Holds => return Truth::Holds,
            Truth::Unsure => truth = Truth::Unsure,
            _ => {}
        }
    }
    match (lit, truth) {
        (Owned::String(needle), Truth::Fails) => match text_truth(v, &|t| {
            crate::substring::find(t.as_bytes(), needle.as_bytes()).is_some()
        }) {
            Truth::Fails if folded_contains(v, needle) => Truth::Unsure,
            other => other,
        },
        (_, Truth::Fails) if v.kind() != Kind::Array && !v.is_null() => Truth::Unsure,
        _ => truth,
    }
}

/// Whether a string value holds `needle` once both are folded as a server that trims,
/// lower-cases or normalises text reads them. A needle that folds to nothing (spaces,
/// invisible characters) is in every text, so it is not read this way.
fn folded_contains(v: Value<'_>, needle: &str) -> bool {
    let Some(text) = v.as_str() else {
        return false;
    };
    let needle: String = Folded::new(needle.chars()).collect();
    if needle.is_empty() {
        return false;
    }
    let text: String = Folded::new(text.chars()).collect();
    crate::substring::find(text.as_bytes(), needle.as_bytes()).is_some()
}

/// Whether `test` holds of a value's text: a string's, exactly; what a lax server might make
/// of anything else, unsure. A number is read as written and, when whole, as JavaScript and
/// Python write it (`22.0` and `2.2e1` are `22`); a boolean by its text; an array or object
/// by each of its values (a tool may join or interpolate them); `null` is no value.
fn text_truth(v: Value<'_>, test: &dyn Fn(&str) -> bool) -> Truth {
    let unsure = match v.kind() {
        Kind::String => {
            let text = v.as_str().map(|s| s.decode());
            if let Some(t) = text.as_deref().filter(|t| test(t)) {
                // It holds only if every reading a server may make matches too: the URL a
                // client fetches (`require: url regex ^https://api\.example\.com` is not met
                // by `https://api.example.com@evil/`); else a path with `.` or `..` parts as
                // a server opens it (`^/srv/data/` is not met by `/srv/data/../../etc/passwd`,
                // nor `^data/` by `data/../secrets`; a trailing or doubled slash changes
                // nothing); and the text as a server normalising it reads it (`^[^<>]*$` is
                // not met by `＜script＞`).
                let mut readings = crate::uri::url_readings(t, false);
                if readings.is_empty() && t.split('/').any(|s| s == "." || s == "..") {
                    readings.extend(crate::uri::path_reading(t));
                }
                let urls = readings.len();
                readings.extend(crate::fold::normalised_reading(t, true));
                // A URL's empty path reads as `/`: `^https://h$` still holds of `https://h`
                // (only a URL's: `..／` is `../`, not `..`).
                let escapes = readings.iter().enumerate().any(|(i, r)| {
                    r != t && !test(r) && !(i < urls && r.strip_suffix('/').is_some_and(test))
                });
                return if escapes { Truth::Unsure } else { Truth::Holds };
            }
            // `ｓｅｃｒｅｔ` is `secret` to a server normalising its input (NFKC).
            let normalised = text
                .as_deref()
                .and_then(|t| crate::fold::normalised_reading(t, false));
            normalised.as_deref().is_some_and(|t| {
                test(t) || crate::lax_number::lax_number(t).is_some_and(|n| test(&n))
            }) ||
            // `ＤＲＯＰ TABLE` is `DROP TABLE` to NFKC, case kept.
            text.as_deref()
                .and_then(|t| crate::fold::normalised_reading(t, true))
                .is_some_and(|c| text.as_deref() != Some(c.as_str()) && test(&c)) ||
            // `//secret/./x` is `/secret/x` to a server opening the path.
            text.as_deref()
                .and_then(crate::uri::path_reading)
                .is_some_and(|p| text.as_deref() != Some(p.as_str()) && test(&p)) ||
            // `http://2130706433/` and `http://x@127.1/` fetch `http://127.0.0.1/`, and so
            // does `ＨＴＴＰ://１２７.０.０.１/` to a server normalising it first.
            [text.as_deref(), normalised.as_deref()].iter().flatten().any(|t| {
                crate::uri::url_readings(t, true).iter().any(|u| {
                    (Some(u.as_str()) != text.as_deref() && test(u))
                        // `%EF%BC%91` decodes to `１`, which IDNA maps to `1`.
                        || crate::fold::normalised_reading(u, false).is_some_and(|n| {
                            crate::uri::url_readings(&n, true).iter().any(|v| test(v))
                        })
                })
            }) ||
            // "022" or "0x16" is 22 to a server that takes the argument as a number.
            lax_reading(v).is_some_and(|t| {
                test(&t)
                    || Number::parse(&t)
                        .and_then(|n| n.whole_digits())
                        .is_some_and(|n| test(&n))
            })
        }
        Kind::Null => false,
        Kind::Bool => test(v.raw()),
        Kind::Number => {
            let raw = v.raw();
            // Other spellings only where they may differ (a plain integer under 2^63, such
            // as `0`, is its own whole and truncated reading): an array of many numbers is
            // not searched three times over.
            let plain = raw.len() < 19 && raw.bytes().all(|b| b.is_ascii_digit());
            test(raw)
                || (!plain
                    && v.as_number().is_some_and(|n| {
                        let whole = n.whole_digits();
                        whole.as_deref().is_some_and(|w| w != raw && test(w))
                            || n.truncated().is_some_and(|t| {
                                t != raw && whole.as_deref() != Some(&t) && test(&t)
                            })
                    }))
        }
        Kind::Array | Kind::Object => v
            .elements()
            .chain(v.members().map(|(_, m)| m))
            .any(|e| text_truth(e, test) != Truth::Fails),
    };
    if unsure {
        Truth::Unsure
    } else {
        Truth::Fails
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse_strict;

    fn cond(path: &str, op: Op) -> Condition {
        Condition {
            path: ArgPath::parse(path).unwrap(),
            op,
            rule: "test".into(),
            also_equal: Vec::new(),
        }
    }

    fn num(s: &str) -> OwnedNumber {
        Number::parse(s).unwrap().to_owned_number()
    }

    fn lit(s: &str) -> Owned {
        Owned::from_value(parse_strict(s.as_bytes(), 8).unwrap())
    }

    fn eval(c: &Condition, args: &str) -> (bool, bool) {
        let a = Arguments::new(Some(parse_strict(args.as_bytes(), 16).unwrap()));
        (c.required_holds(&a), c.deny_triggers(&a))
    }

    #[test]
    fn paths() {
        assert!(ArgPath::parse("args").is_none());
        assert!(ArgPath::parse("args.").is_none());
        assert!(ArgPath::parse("args.a..b").is_none());
        assert!(ArgPath::parse("state.x.y").is_none());
        let p = ArgPath::parse("args.items.1.name").unwrap();
        let v = parse_strict(br#"{"items":[{"name":"a"},{"name":"b"}]}"#, 8).unwrap();
        assert_eq!(p.resolve(Some(v)).exact.map(|v| v.raw()), Some("\"b\""));
        assert_eq!(p.argument(), "items.1.name");
    }

    #[test]
    fn each_operator() {
        let c = cond("args.n", Op::Lte(num("10")));
        assert_eq!(eval(&c, r#"{"n":10}"#), (true, true));
        assert_eq!(eval(&c, r#"{"n":11}"#), (false, false));
        // null: JavaScript compares it as 0, which is <= 10; it satisfies no `require`.
        assert_eq!(eval(&c, r#"{"n":null}"#), (false, true));
        let positive = cond("args.n", Op::Gt(num("0")));
        assert_eq!(eval(&positive, r#"{"n":null}"#), (false, false));
        let below = cond("args.n", Op::Lt(num("-1")));
        assert_eq!(eval(&below, r#"{"n":null}"#), (false, false));
        let at_least = cond("args.n", Op::Gte(num("0")));
        assert_eq!(eval(&at_least, r#"{"n":null}"#), (false, true));
        assert_eq!(
            eval(&c, r#"{"n":"5"}"#),
            (false, true),
            "numeric string: unsure"
        );
        assert_eq!(
            eval(&c, r#"{}"#),
            (false, false),
            "absent: fails require, no deny_if"
        );
        assert!(!eval(&cond("args.n", Op::Lt(num("10"))), r#"{"n":10}"#).0);
        assert!(eval(&cond("args.n", Op::Gt(num("1.5"))), r#"{"n":2}"#).0);
        assert!(eval(&cond("args.n", Op::Gte(num("2"))), r#"{"n":2.0}"#).0);

        let eq = cond("args.b", Op::Eq(lit("\"main\"")));
        assert_eq!(eval(&eq, r#"{"b":"main"}"#), (true, true));
        assert_eq!(eval(&eq, r#"{"b":"ma\u0069n"}"#), (true, true));
        assert_eq!(eval(&eq, r#"{"b":"dev"}"#), (false, false));
        let neq = cond("args.b", Op::Neq(lit("\"main\"")));
        assert_eq!(eval(&neq, r#"{"b":"dev"}"#), (true, true));
        assert_eq!(eval(&neq, r#"{"b":"main"}"#), (false, false));
        assert_eq!(eval(&neq, r#"{}"#), (false, false));

        let num_eq = cond("args.n", Op::Eq(lit("100")));
        assert_eq!(eval(&num_eq, r#"{"n":"100"}"#), (false, true));
        assert_eq!(eval(&num_eq, r#"{"n":1e2}"#), (true, true));

        let in_ = cond("args.c", Op::In(vec![lit("\"usd\""), lit("\"eur\"")]));
        assert_eq!(eval(&in_, r#"{"c":"eur"}"#), (true, true));
        assert_eq!(eval(&in_, r#"{"c":"gbp"}"#), (false, false));
        let not_in = cond("args.c", Op::NotIn(vec![lit("\"admin\"")]));
        assert_eq!(eval(&not_in, r#"{"c":"user"}"#), (true, true));
        assert_eq!(eval(&not_in, r#"{"c":"admin"}"#), (false, false));

        let re = cond("args.p", Op::Regex(Regex::new("^/etc").unwrap()));
        assert_eq!(eval(&re, r#"{"p":"/etc/passwd"}"#), (true, true));
        assert_eq!(eval(&re, r#"{"p":"\/etc/passwd"}"#), (true, true));
        assert_eq!(eval(&re, r#"{"p":"/home"}"#), (false, false));
        // Not a string: a number or boolean by its text, an array or object by its values,
        // null no value (clients send it for optional arguments).
        assert_eq!(eval(&re, r#"{"p":7}"#), (false, false));
        assert_eq!(eval(&re, r#"{"p":null}"#), (false, false));
        assert_eq!(eval(&re, r#"{"p":["/home",["/etc/x"]]}"#), (false, true));
        assert_eq!(eval(&re, r#"{"p":["/home",1]}"#), (false, false));
        assert_eq!(eval(&re, r#"{"p":{"a":"/home"}}"#), (false, false));
        assert_eq!(eval(&re, r#"{"p":{"a":{"b":"/etc/x"}}}"#), (false, true));
        let digits = cond("args.p", Op::Regex(Regex::new("^7").unwrap()));
        assert_eq!(eval(&digits, r#"{"p":75}"#), (false, true));
        // A whole number as JavaScript and Python write it, whatever its spelling, and a
        // string a lax server reads as that number (pydantic: "+22", "2_2", "022", " 23 ";
        // JavaScript's Number(): "0x16", "0b10110").
        let port = cond("args.port", Op::Regex(Regex::new("^(22|23)$").unwrap()));
        assert_eq!(eval(&port, r#"{"port":"22"}"#), (true, true));
        for v in [
            "22",
            "22.0",
            "2.2e1",
            "220e-1",
            "[22.0]",
            r#""022""#,
            r#""+22""#,
            r#""2_2""#,
            r#"" 23 ""#,
            r#""0x16""#,
            r#""0b10110""#,
            r#""22.0""#,
        ] {
            assert_eq!(
                eval(&port, &format!(r#"{{"port":{v}}}"#)),
                (false, true),
                "{v}"
            );
        }
        for v in ["2.2", "220", "-22", r#""22x""#, "0.000001", r#""0x18""#] {
            assert_eq!(
                eval(&port, &format!(r#"{{"port":{v}}}"#)),
                (false, false),
                "{v}"
            );
        }
        // Fractions and negative numbers are read as written only.
        let half = cond("args.n", Op::Regex(Regex::new("^2.5$").unwrap()));
        assert_eq!(eval(&half, r#"{"n":2.5}"#), (false, true));
        assert_eq!(eval(&half, r#"{"n":25e-1}"#), (false, false));

        let has = cond("args.q", Op::Contains(lit("\"DROP\"")));
        assert_eq!(eval(&has, r#"{"q":"x; DROP TABLE"}"#), (true, true));
        assert_eq!(eval(&has, r#"{"q":["a","DROP"]}"#), (true, true));
        assert_eq!(eval(&has, r#"{"q":["a"]}"#), (false, false));
        // An element or value containing it: a tool may join or interpolate them.
        assert_eq!(
            eval(&has, r#"{"q":["bash","-c","x; DROP TABLE"]}"#),
            (false, true)
        );
        assert_eq!(eval(&has, r#"{"q":{"sql":"DROP TABLE"}}"#), (false, true));
        assert_eq!(eval(&has, r#"{"q":{"sql":"SELECT"}}"#), (false, false));
        assert_eq!(eval(&has, r#"{"q":null}"#), (false, false));

        let ex = cond("args.force", Op::Exists(true));
        assert_eq!(eval(&ex, r#"{"force":null}"#), (true, true));
        assert_eq!(eval(&ex, r#"{}"#), (false, false));
        let nex = cond("args.force", Op::Exists(false));
        assert_eq!(eval(&nex, r#"{}"#), (true, true));
        assert_eq!(eval(&nex, r#"{"force":1}"#), (false, false));
    }

    #[test]
    fn doubles_near_a_boundary_are_doubtful() {
        // A server reading doubles sees 100 here: deny_if gte 100 must trigger.
        let c = cond("args.n", Op::Gte(num("100")));
        assert_eq!(eval(&c, r#"{"n":99.999999999999999999}"#), (false, true));
        assert_eq!(eval(&c, r#"{"n":99.99}"#), (false, false));
        let eq = cond("args.n", Op::Eq(lit("0.3")));
        assert_eq!(eval(&eq, r#"{"n":0.30000000000000004}"#), (false, true));
        assert_eq!(eval(&eq, r#"{"n":3e-1}"#), (true, true));
    }

    #[test]
    fn lenient_key_reading_denies() {
        // A server matching keys case-insensitively reads PATH as path.
        let re = cond("args.path", Op::Regex(Regex::new("^/etc").unwrap()));
        assert_eq!(eval(&re, r#"{"PATH":"/etc/passwd"}"#), (false, true));
        assert_eq!(eval(&re, r#"{"ｐath":"/etc/passwd"}"#), (false, true));
        // And a require cannot be satisfied by a look-alike key.
        let req = cond("args.amount", Op::Lte(num("5")));
        assert_eq!(eval(&req, r#"{"Amount":1}"#), (false, true));
        let absent_ok = cond("args.force", Op::Exists(false));
        assert_eq!(eval(&absent_ok, r#"{"Force":true}"#), (false, true));
    }

    #[test]
    fn a_string_holding_json_is_read_as_that_json_too() {
        // The Python SDK runs json.loads on a string given for a parameter not typed `str`.
        let re = cond("args.key", Op::Regex(Regex::new("^secret").unwrap()));
        assert_eq!(eval(&re, r#"{"key":"[\"secret-plans\"]"}"#), (false, true));
        assert_eq!(eval(&re, r#"{"key":"public"}"#), (false, false));
        let has = cond("args.keys", Op::Contains(lit("\"secret\"")));
        assert_eq!(
            eval(&has, r#"{"keys":"[\"\\u0073ecret\"]"}"#),
            (false, true)
        );
        assert_eq!(eval(&has, r#"{"keys":" [\"public\"]"}"#), (false, false));
        let mode = cond("args.opts.mode", Op::Eq(lit("\"overwrite\"")));
        assert_eq!(
            eval(&mode, r#"{"opts":"{\"mode\":\"overwrite\"}"}"#),
            (false, true)
        );
        assert_eq!(
            eval(&mode, r#"{"opts":"{\"mode\":\"keep\"}"}"#),
            (false, false)
        );
        // Encoded twice, and once more than the reading follows.
        let twice = r#"{"opts":"\"{\\\"mode\\\":\\\"overwrite\\\"}\""}"#;
        assert_eq!(
            eval(&mode, twice),
            (false, false),
            "a JSON string, not a container"
        );
        // Strings inside strings are followed.
        let quoted = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
        let two = format!(
            r#"{{"opts":{}}}"#,
            quoted(&format!(r#"{{"mode":{}}}"#, quoted(r#"{"a":1}"#)))
        );
        assert_eq!(
            eval(&cond("args.opts.mode.a", Op::Eq(lit("1"))), &two),
            (false, true)
        );
        assert_eq!(
            eval(&cond("args.opts.mode.a", Op::Eq(lit("2"))), &two),
            (false, false)
        );
        let three = format!(
            r#"{{"x":{}}}"#,
            quoted(&format!(r#"{{"y":{}}}"#, quoted(&two)))
        );
        let deep = |v| cond("args.x.y.opts.mode.a", Op::Eq(lit(v)));
        assert_eq!(eval(&deep("1"), &three), (false, true));
        assert_eq!(eval(&deep("2"), &three), (false, false));
        // A require is not met through a string, even one holding the right value.
        let safe = cond("args.opts.mode", Op::Eq(lit("\"keep\"")));
        assert!(!eval(&safe, r#"{"opts":"{\"mode\":\"keep\"}"}"#).0);
        // JSON that Python reads and this validator refuses: no telling what it holds.
        for refused in [
            r#"{"key":"{\"a\":1,\"a\":2}"}"#,
            r#"{"key":"[NaN]"}"#,
            r#"{"key":"[1, Infinity]"}"#,
            r#"{"key":"{\"n\": -Infinity}"}"#,
            r#"{"key":"[\"\\ud800\"]"}"#,
        ] {
            assert_eq!(eval(&re, refused), (false, true), "{refused}");
        }
        // JSON text that holds nothing the condition looks for is not a match: a file's
        // content, a search query, a header map with keys differing only by case.
        let key = cond(
            "args.content",
            Op::Regex(Regex::new("(?i)BEGIN [A-Z ]*PRIVATE KEY").unwrap()),
        );
        for content in [
            r#"{\"name\": \"app\", \"version\": \"1.0.0\"}"#,
            r#"{\"Content-Type\": \"a\", \"content-type\": \"b\"}"#,
            r#"[1, 2, {\"deep\": [\"x\"]}]"#,
        ] {
            let args = format!(r#"{{"content":"{content}"}}"#);
            assert!(!eval(&key, &args).1, "{content}");
        }
        let args = r#"{"content":"{\"k\": \"-----BEGIN RSA PRIVATE KEY-----\"}"}"#;
        assert!(eval(&key, args).1, "the string itself matches");
        let args = r#"{"content":"{\"k\": \"\\u0042EGIN PRIVATE KEY\"}"}"#;
        assert!(eval(&key, args).1, "only the JSON inside matches");
        // Text that only starts like JSON is a string like any other.
        for text in [r#"{"key":"[INFO] started"}"#, r#"{"key":"{not json"}"#] {
            assert_eq!(eval(&re, text), (false, false), "{text}");
        }
    }

    #[test]
    fn another_type_than_the_literal_is_unsure() {
        // pydantic's lax mode reads all of these as `true`, 5 or 13.
        let force = cond("args.force", Op::Eq(lit("true")));
        for v in [r#""yes""#, r#""on""#, r#""1""#, "1", "1.0", r#""t""#] {
            let args = format!(r#"{{"force":{v}}}"#);
            assert_eq!(eval(&force, &args), (false, true), "{v}");
        }
        assert_eq!(eval(&force, r#"{"force":false}"#), (false, false));
        assert_eq!(eval(&force, r#"{"force":null}"#), (false, false));
        let n = cond("args.n", Op::Eq(lit("5")));
        for v in [r#""+5""#, r#""0_5""#, r#""0x5""#, "[5]", "true"] {
            let args = format!(r#"{{"n":{v}}}"#);
            assert_eq!(eval(&n, &args), (false, true), "{v}");
        }
        assert_eq!(eval(&n, r#"{"n":6}"#), (false, false));
        let slot = cond("args.slot", Op::NotIn(vec![lit("0"), lit("13")]));
        assert_eq!(eval(&slot, r#"{"slot":"1_3"}"#), (false, true));
        assert_eq!(eval(&slot, r#"{"slot":7}"#), (true, true));
        // Into a string: what JavaScript's `==` converts, nothing else.
        let name = cond("args.name", Op::Eq(lit("\"main\"")));
        assert_eq!(eval(&name, r#"{"name":["main"]}"#), (false, true));
        assert_eq!(eval(&name, r#"{"name":["main","dev"]}"#), (false, false));
        assert_eq!(eval(&name, r#"{"name":"dev"}"#), (false, false));
        assert_eq!(
            eval(&name, r#"{"name":"[1,2]"}"#),
            (false, false),
            "JSON text"
        );
        assert_eq!(eval(&name, r#"{"name":"{\"a\":1}"}"#), (false, false));
        let yes = cond("args.flag", Op::Eq(lit("\"yes\"")));
        assert_eq!(eval(&yes, r#"{"flag":false}"#), (false, false));
        assert_eq!(eval(&yes, r#"{"flag":true}"#), (false, false));
        let five = cond("args.n", Op::Eq(lit("\"5\"")));
        assert_eq!(eval(&five, r#"{"n":5.0}"#), (false, true));
    }

    #[test]
    fn prototypes_and_one_element_arrays_are_read_through() {
        // `Object.assign({}, args)` makes a `__proto__` member the copy's prototype, and
        // Jackson's UNWRAP_SINGLE_VALUE_ARRAYS reads `[{…}]` where an object is expected.
        let key = cond("args.key", Op::Eq(lit("\"secret\"")));
        let mode = cond("args.opts.mode", Op::Eq(lit("\"admin\"")));
        for (c, args) in [
            (&key, r#"{"__proto__":{"key":"secret"}}"#),
            (
                &key,
                r#"{"key":"public","__proto__":{"__proto__":{"key":"secret"}}}"#,
            ),
            (&key, r#"{"\u005f_proto__":{"key":"secret"}}"#),
            (&mode, r#"{"opts":{"__proto__":{"mode":"admin"}}}"#),
            (&mode, r#"{"opts":[{"mode":"admin"}]}"#),
            (&mode, r#"{"opts":[[{"mode":"admin"}]]}"#),
            (&mode, r#"{"__proto__":{"opts":{"mode":"admin"}}}"#),
        ] {
            assert!(eval(c, args).1, "deny_if {args}");
        }
        for args in [
            r#"{"__proto__":"secret","key":"public"}"#,
            r#"{"proto":{"key":"secret"},"key":"public"}"#,
        ] {
            assert!(!eval(&key, args).1, "{args}");
        }
        // Two elements are no object to unwrap; the path's own index still reads one.
        assert!(!eval(&mode, r#"{"opts":[{"mode":"admin"},{}]}"#).1);
        let first = cond("args.opts.0.mode", Op::Eq(lit("\"admin\"")));
        assert!(eval(&first, r#"{"opts":[{"mode":"admin"},{}]}"#).1);
        // A requirement met only through a prototype is not met by the object itself.
        let required = cond("args.key", Op::Eq(lit("\"public\"")));
        assert!(!eval(&required, r#"{"__proto__":{"key":"public"}}"#).0);
        assert!(eval(&required, r#"{"key":"public"}"#).0);
    }

    #[test]
    fn every_member_a_folded_key_matches_is_read() {
        // Below the argument names the validator lets `mode` and `MODE` both through; a
        // server matching keys case-insensitively may take either.
        let exact = crate::json::Options {
            max_depth: 8,
            keys: crate::json::KeyRule::Exact,
        };
        let eval = |c: &Condition, args: &str| {
            let v = crate::json::Validator::new()
                .validate(args.as_bytes(), exact)
                .unwrap();
            let a = Arguments::new(Some(v));
            (c.required_holds(&a), c.deny_triggers(&a))
        };
        let mode = cond("args.opts.mode", Op::Eq(lit("\"overwrite\"")));
        for args in [
            r#"{"opts":{"mode":"keep","MODE":"overwrite"}}"#,
            r#"{"opts":{"MODE":"overwrite","mode":"keep"}}"#,
        ] {
            assert_eq!(eval(&mode, args), (false, true), "{args}");
        }
        let keep = cond("args.opts.mode", Op::Eq(lit("\"keep\"")));
        assert!(!eval(&keep, r#"{"opts":{"mode":"keep","Mode":"overwrite"}}"#).0);
        assert!(eval(&keep, r#"{"opts":{"mode":"keep"}}"#).0);
        let path = ArgPath::parse("args.opts.mode").unwrap();
        let mut validator = crate::json::Validator::new();
        let v = validator
            .validate(br#"{"opts":{"mode":1}}"#, exact)
            .unwrap();
        assert!(path.resolve(Some(v)).folded.is_some());
        let v = validator
            .validate(br#"{"opts":{"mode":1,"Mode":2}}"#, exact)
            .unwrap();
        let r = path.resolve(Some(v));
        assert!(
            r.exact.is_none() && r.folded.is_none(),
            "ambiguous: no value"
        );
    }

    #[test]
    fn snake_kebab_and_camel_case_are_one_argument() {
        // A server with an alias generator (pydantic's to_camel with populate_by_name) or
        // key-casing middleware reads `filePath` and `file-path` as `file_path`.
        let etc = cond("args.file_path", Op::Regex(Regex::new("^/etc").unwrap()));
        for args in [
            r#"{"filePath":"/etc/passwd"}"#,
            r#"{"file-path":"/etc/passwd"}"#,
            r#"{"FILE_PATH":"/etc/passwd"}"#,
            r#"{"file_path":"/tmp/x","filePath":"/etc/passwd"}"#,
        ] {
            assert!(eval(&etc, args).1, "{args}");
        }
        assert!(!eval(&etc, r#"{"filePath":"/tmp/x"}"#).1);
        assert!(!eval(&etc, r#"{"file_paths":"/etc/passwd"}"#).1);
        // `require` holds only if every spelling the server may take satisfies it.
        let tmp = cond("args.file_path", Op::Regex(Regex::new("^/tmp/").unwrap()));
        assert!(eval(&tmp, r#"{"file_path":"/tmp/x"}"#).0);
        assert!(!eval(&tmp, r#"{"filePath":"/tmp/x"}"#).0);
        assert!(!eval(&tmp, r#"{"file_path":"/tmp/x","filePath":"/etc/passwd"}"#).0);
        // An amount read for a limit's increment: two spellings are no one value (so the
        // call is refused), and the camelCase one alone is the amount.
        let path = ArgPath::parse("args.amount_usd").unwrap();
        let v = parse_strict(br#"{"amount_usd":1,"amountUsd":1000}"#, 8).unwrap();
        let r = path.resolve(Some(v));
        assert!(r.exact.is_none() && r.folded.is_none());
        let v = parse_strict(br#"{"amountUsd":1000}"#, 8).unwrap();
        assert_eq!(path.resolve(Some(v)).folded.map(|v| v.raw()), Some("1000"));
    }

    #[test]
    fn no_arguments_at_all() {
        let c = cond("args.n", Op::Lte(num("10")));
        assert!(!c.required_holds(&Arguments::new(None)));
        assert!(!c.deny_triggers(&Arguments::new(None)));
        assert!(cond("args.n", Op::Exists(false)).required_holds(&Arguments::new(None)));
    }

    #[test]
    fn strings_a_server_may_fold_into_the_literal_are_unsure() {
        // An address a mail server reads case-insensitively, a key a tool trims, a
        // full-width or zero-width spelling a server normalises away.
        let ceo = cond("args.to", Op::Eq(lit(r#""ceo@corp.example""#)));
        for v in [
            r#""CEO@Corp.Example""#,
            r#"" ceo@corp.example\n""#,
            r#""ｃｅｏ@corp.example""#,
            r#""ceo\u200b@corp.example""#,
            r#"["Ceo@corp.example"]"#,
        ] {
            assert_eq!(
                eval(&ceo, &format!(r#"{{"to":{v}}}"#)),
                (false, true),
                "{v}"
            );
        }
        assert_eq!(eval(&ceo, r#"{"to":"ceo@corp.example"}"#), (true, true));
        assert_eq!(eval(&ceo, r#"{"to":"cfo@corp.example"}"#), (false, false));
        // Negated and listed: unsure fails a `require` and triggers a `deny_if`.
        let not_secret = cond("args.key", Op::Neq(lit(r#""secret""#)));
        assert_eq!(eval(&not_secret, r#"{"key":"Secret"}"#), (false, true));
        assert_eq!(eval(&not_secret, r#"{"key":"public"}"#), (true, true));
        let allowed = cond("args.key", Op::NotIn(vec![lit(r#""secret""#)]));
        assert_eq!(eval(&allowed, r#"{"key":"SECRET"}"#), (false, true));
        // contains: the folded needle in the folded text, unless the needle folds away.
        let has = cond("args.q", Op::Contains(lit(r#""drop table""#)));
        assert_eq!(eval(&has, r#"{"q":"x; DROP  TABLE users"}"#), (false, true));
        assert_eq!(eval(&has, r#"{"q":"select 1"}"#), (false, false));
        let space = cond("args.q", Op::Contains(lit(r#"" ""#)));
        assert_eq!(eval(&space, r#"{"q":"ab"}"#), (false, false));
        assert_eq!(eval(&space, r#"{"q":"a b"}"#), (true, true));
    }

    #[test]
    fn null_and_numeric_strings_as_lax_servers_coerce_them() {
        // zod's z.coerce.number() makes null 0, z.coerce.boolean() false.
        let zero = cond("args.n", Op::Eq(lit("0")));
        assert_eq!(eval(&zero, r#"{"n":null}"#), (false, true));
        let not_zero = cond("args.n", Op::Neq(lit("0")));
        assert_eq!(eval(&not_zero, r#"{"n":null}"#), (false, true));
        let no = cond("args.f", Op::In(vec![lit("false")]));
        assert_eq!(eval(&no, r#"{"f":null}"#), (false, true));
        let empty = cond("args.s", Op::Eq(lit(r#""""#)));
        assert_eq!(eval(&empty, r#"{"s":null}"#), (false, true));
        // null is still no other value.
        let seven = cond("args.n", Op::Eq(lit("7")));
        assert_eq!(eval(&seven, r#"{"n":null}"#), (false, false));
        let word = cond("args.s", Op::Eq(lit(r#""x""#)));
        assert_eq!(eval(&word, r#"{"s":null}"#), (false, false));
        // A string literal that is a number meets the number spelled any lax way.
        let ports = cond("args.port", Op::In(vec![lit(r#""22""#), lit(r#""23""#)]));
        for v in [r#""022""#, r#""+22""#, r#"" 23 ""#, r#""0x16""#, r#""2_3""#] {
            assert_eq!(
                eval(&ports, &format!(r#"{{"port":{v}}}"#)),
                (false, true),
                "{v}"
            );
        }
        assert_eq!(eval(&ports, r#"{"port":"24"}"#), (false, false));
        assert_eq!(eval(&ports, r#"{"port":"22"}"#), (true, true));
    }

    #[test]
    fn the_json_text_null_in_a_string_is_null() {
        // The Python SDK's `pre_parse_json` makes `"null"` None for a parameter not typed
        // `str`, so `share(path, expires_at: int | None = 3600)` runs with no expiry.
        let never = cond("args.expires_at", Op::Eq(lit("null")));
        for v in [r#""null""#, r#"" null\n""#, r#""\u006eull""#, "null"] {
            assert!(eval(&never, &format!(r#"{{"expires_at":{v}}}"#)).1, "{v}");
        }
        let expiring = cond("args.expires_at", Op::Neq(lit("null")));
        assert_eq!(eval(&expiring, r#"{"expires_at":"null"}"#), (false, true));
        assert!(eval(&expiring, r#"{"expires_at":3600}"#).0);
        for v in [r#""nullx""#, r#""none""#, r#""nul""#] {
            assert!(!eval(&never, &format!(r#"{{"expires_at":{v}}}"#)).1, "{v}");
        }
    }

    #[test]
    fn paths_are_read_as_a_server_opening_them_reads_them() {
        let secret = cond(
            "args.path",
            Op::In(vec![lit(r#""/etc/passwd""#), lit(r#""/etc/shadow""#)]),
        );
        let one = cond("args.path", Op::Eq(lit(r#""/etc/passwd""#)));
        let under = cond("args.path", Op::Regex(Regex::new("^/secret/").unwrap()));
        for v in [
            "/etc/passwd/",
            "/etc//passwd",
            "/etc/./passwd",
            "/tmp/../etc/passwd",
            "//etc/passwd",
        ] {
            let args = format!(r#"{{"path":"{v}"}}"#);
            assert_eq!(eval(&secret, &args), (false, true), "{v}");
            assert_eq!(eval(&one, &args), (false, true), "{v}");
        }
        for v in ["//secret/x", "/srv/../secret/x", "/./secret/x"] {
            assert!(eval(&under, &format!(r#"{{"path":"{v}"}}"#)).1, "{v}");
        }
        for v in ["/etc/passwd2", "etc/passwd", "/srv/etc/passwd"] {
            let args = format!(r#"{{"path":"{v}"}}"#);
            assert_eq!(eval(&secret, &args), (false, false), "{v}");
            assert_eq!(eval(&one, &args), (false, false), "{v}");
        }
        assert!(!eval(&under, r#"{"path":"secret/x"}"#).1);
        // `..` past a relative path's start climbs to `/` from most working directories.
        for v in ["../../../../../../../../etc/passwd", "./x/../../etc/passwd"] {
            assert!(eval(&secret, &format!(r#"{{"path":"{v}"}}"#)).1, "{v}");
        }
        // One string in an array is read as that string, its path too.
        assert!(eval(&secret, r#"{"path":["/etc//passwd"]}"#).1);
        // `require` holds only if the path a server opens matches too.
        let inside = cond("args.path", Op::Regex(Regex::new("^/srv/data/").unwrap()));
        assert!(eval(&inside, r#"{"path":"/srv/data/a/b.txt"}"#).0);
        assert!(eval(&inside, r#"{"path":"/srv/data/a//b.txt/"}"#).0);
        assert_eq!(
            eval(&inside, r#"{"path":"/srv/data/../../etc/passwd"}"#),
            (false, true)
        );
        let site = cond("args.url", Op::Regex(Regex::new("^https://ok/").unwrap()));
        assert_eq!(eval(&site, r#"{"url":"https://ok/a"}"#), (true, true));
        assert!(eval(&site, r#"{"url":"https://ok/a/../b"}"#).0);
        let relative = cond("args.path", Op::Regex(Regex::new("^data/").unwrap()));
        assert!(eval(&relative, r#"{"path":"data/./x"}"#).0);
        assert!(!eval(&relative, r#"{"path":"data/../secrets/key"}"#).0);
        // A trailing or doubled slash changes nothing a `require` reads.
        assert!(eval(&inside, r#"{"path":"/srv/data/"}"#).0);
        let dir = cond("args.path", Op::Regex(Regex::new("/$").unwrap()));
        assert!(eval(&dir, r#"{"path":"/tmp/"}"#).0);
        let unc = cond(
            "args.path",
            Op::Regex(Regex::new("^//files/public/").unwrap()),
        );
        assert!(eval(&unc, r#"{"path":"//files/public/a.txt"}"#).0);
        // Nested one-element arrays are read too.
        assert!(eval(&secret, r#"{"path":[["/etc//passwd"]]}"#).1);
        // As Python's `.strip()` leaves it.
        assert!(eval(&secret, r#"{"path":" /etc//passwd\n"}"#).1);
        assert!(eval(&under, r#"{"path":"\t//secret/x"}"#).1);
        // A number longer than any integer or double is unsure against many literals.
        let ports = cond("args.port", Op::NotIn(vec![lit("22"), lit("23")]));
        let long = format!(r#"{{"port":2{}}}"#, "0".repeat(80));
        assert_eq!(eval(&ports, &long), (false, true));
        assert_eq!(eval(&ports, r#"{"port":24}"#), (true, true));
    }

    #[test]
    fn urls_are_read_as_the_client_fetching_them_reads_them() {
        let internal = cond(
            "args.url",
            Op::Regex(Regex::new(r"^https?://(127\.|localhost/|169\.254\.)").unwrap()),
        );
        for v in [
            "http://2130706433/admin",
            "http://0x7f.1/",
            "http://127.1/",
            "HTTP://LOCALHOST/",
            "http://user:pw@127.0.0.1/",
            "http://169.254.169.254./latest",
            " http://%31%32%37.0.0.1/",
            "http://localhost:80/",
            "http:/localhost/x/../",
        ] {
            assert!(eval(&internal, &format!(r#"{{"url":"{v}"}}"#)).1, "{v}");
        }
        for v in [
            "http://example.com/127.0.0.1",
            "https://x/../127.0.0.1",
            "mailto:127.0.0.1",
        ] {
            assert!(!eval(&internal, &format!(r#"{{"url":"{v}"}}"#)).1, "{v}");
        }
        // `require` holds only if the URL a client fetches matches too.
        let api = cond(
            "args.url",
            Op::Regex(Regex::new(r"^https://api\.example\.com").unwrap()),
        );
        for v in [
            "https://api.example.com/v1",
            "https://api.example.com:443/v1/../v2",
        ] {
            assert!(eval(&api, &format!(r#"{{"url":"{v}"}}"#)).0, "{v}");
        }
        // Not a URL: a path whose `..` climbs out, whatever `://` it holds.
        let inside = cond("args.path", Op::Regex(Regex::new("^/srv/data/").unwrap()));
        for v in [
            "/srv/data/x://../../../etc/passwd",
            "/srv/data/a://b/../../../../etc",
        ] {
            assert!(!eval(&inside, &format!(r#"{{"path":"{v}"}}"#)).0, "{v}");
        }
        assert!(eval(&api, r#"{"url":"https://api.example.com/x?next=../../y"}"#).0);
        // As a WHATWG parser cleans it first, and with the userinfo cut before decoding.
        for v in [
            "http://evil.com%2F@127.0.0.1/admin",
            "http://x%23@0x7f.1/admin",
            "http://127。0。0。1/admin",
            "http://127｡0｡0｡1/",
            r"http:\\\\127.0.0.1\\admin",
            r"http://evil.com\\@127.0.0.1/",
            "ht\\ttp://127.0.0.1/",
            "\\u0001http://127.0.0.1/",
            "HTTP://ｌｏｃａｌｈｏｓｔ/",
        ] {
            assert!(eval(&internal, &format!(r#"{{"url":"{v}"}}"#)).1, "{v}");
        }
        let v1 = cond(
            "args.url",
            Op::Regex(Regex::new(r"^http://127\.0\.0\.1/v1/").unwrap()),
        );
        for v in [
            "/v1/%2e%2e/admin",
            "/v1/.%2E/admin",
            r"/v1/..\\admin",
            "/v1/.\\n./admin",
        ] {
            let args = format!(r#"{{"url":"http://127.0.0.1{v}"}}"#);
            assert!(!eval(&v1, &args).0, "{v}");
        }
        assert!(eval(&v1, r#"{"url":"http://127.0.0.1/v1/a%20b"}"#).0);
        // Hosts decoded then mapped as IDNA maps them, and Go's bracketed IPv4.
        for v in [
            "http://%EF%BC%91%EF%BC%92%EF%BC%97.0.0.1/",
            "http://127%E3%80%820%E3%80%820%E3%80%821/",
            "http://local%C2%ADhost/",
            "http://[127.0.0.1]/",
        ] {
            assert!(eval(&internal, &format!(r#"{{"url":"{v}"}}"#)).1, "{v}");
        }
        // Tabs in a scheme do not count against its length.
        let tabs = format!(r#"{{"url":"h{}ttp://127.0.0.1/"}}"#, r"\t".repeat(100));
        assert!(eval(&internal, &tabs).1);
        // Only special URLs are cleaned as WHATWG cleans them, and not past `?` or `#`.
        let scheme = cond(
            "args.url",
            Op::Regex(Regex::new("(?i)^[a-z][a-z0-9+.-]*://").unwrap()),
        );
        assert!(!eval(&scheme, r#"{"url":"D:\\\\share\\x"}"#).1);
        let search = cond(
            "args.url",
            Op::Regex(Regex::new(r"^https://h/search\?q=[^/#]*$").unwrap()),
        );
        assert!(eval(&search, r#"{"url":"https://h/search?q=a\\b%2e"}"#).0);
        // Other schemes keep their userinfo and case; a bare origin holds of `$`.
        for (pattern, v) in [
            ("^postgres://readonly@db/", "postgres://readonly@db/app"),
            ("^s3://Logs-Bucket/", "s3://Logs-Bucket/x"),
            (r"^https://api\.example\.com$", "https://api.example.com"),
            ("^[^/]*$", "ws:chat"),
        ] {
            let c = cond("args.url", Op::Regex(Regex::new(pattern).unwrap()));
            assert!(eval(&c, &format!(r#"{{"url":"{v}"}}"#)).0, "{v}");
        }
        // Readings only ever make a condition unsure: a `require` fails on them.
        for v in [
            "https://api.example.com@evil.test/",
            "https://api.example.com:x@evil.test/",
            "https://API.example.com/v1",
        ] {
            assert!(!eval(&api, &format!(r#"{{"url":"{v}"}}"#)).0, "{v}");
        }
    }

    #[test]
    fn deny_if_reads_nfkc_with_its_case_kept() {
        let drop = cond(
            "args.sql",
            Op::Regex(Regex::new(r"\bDROP\s+TABLE\b").unwrap()),
        );
        for v in [
            "ＤＲＯＰ TABLE users",
            "𝐃𝐑𝐎𝐏 TABLE users",
            "DROP ＴＡＢＬＥ x",
        ] {
            assert!(eval(&drop, &format!(r#"{{"sql":"{v}"}}"#)).1, "{v}");
        }
        // And lower-cased, as before: `^secret` meets `ＳＥＣＲＥＴ`.
        let secret = cond("args.key", Op::Regex(Regex::new("^secret").unwrap()));
        assert!(eval(&secret, r#"{"key":"ＳＥＣＲＥＴ-1"}"#).1);
        // NFKC keeps case, so `require: ^[^A-Z]*$` fails on fullwidth capitals.
        let lower = cond("args.key", Op::Regex(Regex::new("^[^A-Z]*$").unwrap()));
        assert!(!eval(&lower, r#"{"key":"ａｄｍｉｎ ＡＤＭＩＮ"}"#).0);
        assert!(eval(&lower, r#"{"key":"ａｄｍｉｎ"}"#).0);
    }

    #[test]
    fn require_holds_only_if_the_nfkc_reading_matches_too() {
        let plain = cond("args.key", Op::Regex(Regex::new("^[^<>;/]*$").unwrap()));
        for v in [
            "＜script＞",
            "x； rm -rf ~",
            "..／..／etc／passwd",
            "..／",
            "secret／",
        ] {
            assert!(!eval(&plain, &format!(r#"{{"key":"{v}"}}"#)).0, "{v}");
        }
        // NFKC keeps letters with accents and marks: they still meet the pattern they match.
        let city = cond(
            "args.city",
            Op::Regex(Regex::new("^(Zürich|Genève|Gießen)$").unwrap()),
        );
        for v in ["Zürich", "Genève", "Gießen"] {
            assert!(eval(&city, &format!(r#"{{"city":"{v}"}}"#)).0, "{v}");
            assert!(eval(&plain, &format!(r#"{{"key":"{v}"}}"#)).0, "{v}");
        }
    }

    #[test]
    fn containers_are_compared_as_a_lax_server_reads_them() {
        let force = cond("args.options", Op::Eq(lit(r#"{"force":true}"#)));
        for v in [
            r#"{"force":"true"}"#,
            r#"{"force":1}"#,
            r#"{"Force":true}"#,
            r#"{"force":true,"dry_run":false}"#,
        ] {
            assert_eq!(
                eval(&force, &format!(r#"{{"options":{v}}}"#)),
                (false, true),
                "{v}"
            );
        }
        assert_eq!(eval(&force, r#"{"options":{"force":true}}"#), (true, true));
        assert_eq!(
            eval(&force, r#"{"options":{"force":false}}"#),
            (false, false)
        );
        assert_eq!(eval(&force, r#"{"options":{}}"#), (false, false));
        let not_forced = cond("args.options", Op::Neq(lit(r#"{"force":true}"#)));
        assert_eq!(
            eval(&not_forced, r#"{"options":{"force":"yes"}}"#),
            (false, true)
        );
        let hosts = cond(
            "args.db",
            Op::In(vec![lit(r#"{"host":"prod-db","port":5432}"#)]),
        );
        for v in [
            r#"{"host":"prod-db","port":"5432"}"#,
            r#"{"host":"PROD-DB","port":5432}"#,
        ] {
            assert!(eval(&hosts, &format!(r#"{{"db":{v}}}"#)).1, "{v}");
        }
        assert!(!eval(&hosts, r#"{"db":{"host":"dev-db","port":5432}}"#).1);
        let argv = cond("args.argv", Op::Eq(lit(r#"["rm","-rf","/"]"#)));
        assert!(eval(&argv, r#"{"argv":["RM","-rf","/"]}"#).1);
        assert!(!eval(&argv, r#"{"argv":["rm","-rf"]}"#).1);
        assert!(!eval(&argv, r#"{"argv":["rm","-rf","/","x"]}"#).1);
        let ceo = cond(
            "args.to",
            Op::Contains(lit(r#"{"email":"ceo@corp.example"}"#)),
        );
        assert!(eval(&ceo, r#"{"to":[{"email":"CEO@corp.example"}]}"#).1);
        // Too large to walk member by member: unsure.
        let big = format!(
            r#"{{"options":{{"force":false,"pad":"{}"}}}}"#,
            "x".repeat(5000)
        );
        assert_eq!(eval(&force, &big), (false, true));
    }

    #[test]
    fn numbers_a_double_rounds_to_whole_are_read_whole() {
        let port = cond("args.port", Op::Regex(Regex::new("^22$").unwrap()));
        let id = cond("args.id", Op::Contains(lit(r#""1000""#)));
        for v in [
            "21.9999999999999999",
            "22.0000000000000001",
            "[21.9999999999999999]",
            r#""21.9999999999999999""#,
            "-0.0e0",
        ] {
            let (_, denied) = eval(&port, &format!(r#"{{"port":{v}}}"#));
            assert_eq!(denied, v != "-0.0e0", "{v}");
        }
        assert!(eval(&id, r#"{"id":999.99999999999999}"#).1);
        assert!(!eval(&port, r#"{"port":21.99}"#).1);
        let minus = cond("args.n", Op::Regex(Regex::new("^-22$").unwrap()));
        assert!(eval(&minus, r#"{"n":-22.0}"#).1);
    }

    #[test]
    fn structural_equality() {
        let v = |s: &'static str| parse_strict(s.as_bytes(), 16).unwrap();
        let obj = lit(r#"{"a":[1,"x",null],"b":true}"#);
        assert_eq!(
            equality(&obj, v(r#"{"b":true,"a":[1.0,"\u0078",null]}"#)),
            Truth::Holds
        );
        assert_eq!(equality(&obj, v(r#"{"b":true,"a":[1,"x"]}"#)), Truth::Fails);
        assert_eq!(
            equality(&obj, v(r#"{"b":true,"A":[1,"x",null]}"#)),
            Truth::Unsure
        );
        assert_eq!(
            equality(&obj, v(r#"{"b":true,"a":[1,"x",null],"c":0}"#)),
            Truth::Unsure
        );
        assert_eq!(equality(&lit("1"), v(r#""1""#)), Truth::Unsure);
        assert_eq!(equality(&lit(r#""é""#), v(r#""\u00e9""#)), Truth::Holds);
        assert_eq!(equality(&lit("[]"), v("{}")), Truth::Fails);
    }
}
