//! Argument conditions (`require`, `deny_if`) and argument paths.
//!
//! Every condition is evaluated under two readings of the arguments: the exact one, and the
//! one a lenient server might make (keys matched after folding case, compatibility forms,
//! whitespace and invisible characters; numbers read from strings). `require` passes only
//! if it holds under every reading; `deny_if` triggers if it could hold under any.

use crate::fold::fold_eq;
use crate::json::{Kind, Number, Owned, OwnedNumber, Value};
use regex_lite::Regex;
use std::cmp::Ordering;

/// A path into a call's `arguments`: `args.a.b.0` (segments after `args`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgPath {
    segments: Vec<String>,
    text: String,
}

impl ArgPath {
    /// Parses `args.<segment>(.<segment>)*`; `None` if malformed.
    pub fn parse(text: &str) -> Option<ArgPath> {
        let rest = text.strip_prefix("args.")?;
        let segments: Vec<String> = rest.split('.').map(str::to_string).collect();
        if segments.iter().any(String::is_empty) {
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
        self.segments.iter().map(String::as_str)
    }

    /// The path without its `args.` prefix, for messages to the agent.
    pub fn argument(&self) -> &str {
        self.text.strip_prefix("args.").unwrap_or(&self.text)
    }

    /// The value at this path under the exact and the folded reading.
    pub fn resolve<'a>(&self, arguments: Option<Value<'a>>) -> Readings<'a> {
        let mut exact = arguments;
        let mut folded = arguments;
        for seg in &self.segments {
            exact = exact.and_then(|v| step(v, seg, false));
            folded = folded.and_then(|v| step(v, seg, true));
        }
        Readings { exact, folded }
    }
}

fn step<'a>(v: Value<'a>, seg: &str, fold: bool) -> Option<Value<'a>> {
    match v.kind() {
        Kind::Object => v
            .members()
            .find(|(k, _)| {
                if fold {
                    fold_eq(k.chars(), seg.chars())
                } else {
                    k.eq_str(seg)
                }
            })
            .map(|(_, v)| v),
        Kind::Array => seg.parse::<usize>().ok().and_then(|i| v.elements().nth(i)),
        _ => None,
    }
}

/// The value a path designates, under each reading.
#[derive(Clone, Copy, Debug)]
pub struct Readings<'a> {
    /// Keys matched exactly.
    pub exact: Option<Value<'a>>,
    /// Keys matched as a lenient server might (a superset of the exact matches).
    pub folded: Option<Value<'a>>,
}

impl<'a> Readings<'a> {
    fn each(&self) -> impl Iterator<Item = Option<Value<'a>>> {
        let differs = self.exact != self.folded;
        std::iter::once(self.exact).chain(differs.then_some(self.folded))
    }
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

impl Condition {
    /// Whether a `require` condition is met: it must hold under every reading.
    pub fn required_holds(&self, arguments: Option<Value<'_>>) -> bool {
        self.path
            .resolve(arguments)
            .each()
            .all(|v| self.truth(v) == Truth::Holds)
    }

    /// Whether a `deny_if` condition triggers: it holds, or might, under some reading.
    pub fn deny_triggers(&self, arguments: Option<Value<'_>>) -> bool {
        self.path
            .resolve(arguments)
            .each()
            .any(|v| matches!(self.truth(v), Truth::Holds | Truth::Unsure))
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
            Op::Eq(lit) => equality(lit, v),
            Op::Neq(lit) => negate(equality(lit, v)),
            Op::In(lits) => membership(lits, v),
            Op::NotIn(lits) => negate(membership(lits, v)),
            Op::Lt(n) => ordering(n, v, |o| o == Ordering::Less),
            Op::Lte(n) => ordering(n, v, |o| o != Ordering::Greater),
            Op::Gt(n) => ordering(n, v, |o| o == Ordering::Greater),
            Op::Gte(n) => ordering(n, v, |o| o != Ordering::Less),
            Op::Regex(re) => match v.as_str() {
                Some(s) => bool_truth(re.is_match(&s.decode())),
                None => Truth::Unsure,
            },
            Op::Contains(lit) => contains(lit, v),
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

/// Whether a lenient server could read `v` as this literal: a number that a double blurs
/// with it, a numeric string, a `"true"`/`"false"` string.
fn lenient_equal(lit: &Owned, v: Value<'_>) -> bool {
    match (lit, v.kind()) {
        (Owned::Number(n), Kind::Number) => v.as_number().is_some_and(|m| m.near(n.as_number())),
        (Owned::Number(n), Kind::String) => v.as_str().is_some_and(|s| {
            Number::parse(s.decode().trim()).is_some_and(|m| m.near(n.as_number()))
        }),
        (Owned::String(s), Kind::Number) => match (Number::parse(s.trim()), v.as_number()) {
            (Some(a), Some(b)) => a.near(b),
            _ => false,
        },
        (Owned::Bool(b), Kind::String) => v.as_str().is_some_and(|s| {
            s.decode()
                .trim()
                .eq_ignore_ascii_case(if *b { "true" } else { "false" })
        }),
        (Owned::String(s), Kind::Bool) => v.as_bool().is_some_and(|b| {
            s.trim()
                .eq_ignore_ascii_case(if b { "true" } else { "false" })
        }),
        _ => false,
    }
}

fn equality(lit: &Owned, v: Value<'_>) -> Truth {
    if lit.equals(v) {
        Truth::Holds
    } else if lenient_equal(lit, v) {
        Truth::Unsure
    } else {
        Truth::Fails
    }
}

fn membership(lits: &[Owned], v: Value<'_>) -> Truth {
    let mut truth = Truth::Fails;
    for lit in lits {
        match equality(lit, v) {
            Truth::Holds => return Truth::Holds,
            Truth::Unsure => truth = Truth::Unsure,
            _ => {}
        }
    }
    truth
}

/// Exact comparison, unless a double could blur the two numbers into equal ones and that
/// would change the answer.
fn ordering(n: &OwnedNumber, v: Value<'_>, accept: impl Fn(Ordering) -> bool) -> Truth {
    let Some(m) = v.as_number() else {
        return Truth::Unsure;
    };
    let lit = n.as_number();
    let exact = accept(m.compare(lit));
    if m.near(lit) && accept(Ordering::Equal) != exact {
        Truth::Unsure
    } else {
        bool_truth(exact)
    }
}

fn contains(lit: &Owned, v: Value<'_>) -> Truth {
    match v.kind() {
        Kind::String => match (lit, v.as_str()) {
            (Owned::String(needle), Some(hay)) => {
                bool_truth(hay.decode().contains(needle.as_str()))
            }
            _ => Truth::Unsure,
        },
        Kind::Array => {
            let mut truth = Truth::Fails;
            for e in v.elements() {
                match equality(lit, e) {
                    Truth::Holds => return Truth::Holds,
                    Truth::Unsure => truth = Truth::Unsure,
                    _ => {}
                }
            }
            truth
        }
        _ => Truth::Unsure,
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
        }
    }

    fn num(s: &str) -> OwnedNumber {
        Number::parse(s).unwrap().to_owned_number()
    }

    fn lit(s: &str) -> Owned {
        Owned::from_value(parse_strict(s.as_bytes(), 8).unwrap())
    }

    fn eval(c: &Condition, args: &str) -> (bool, bool) {
        let v = parse_strict(args.as_bytes(), 16).unwrap();
        (c.required_holds(Some(v)), c.deny_triggers(Some(v)))
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
        assert_eq!(eval(&re, r#"{"p":7}"#), (false, true));

        let has = cond("args.q", Op::Contains(lit("\"DROP\"")));
        assert_eq!(eval(&has, r#"{"q":"x; DROP TABLE"}"#), (true, true));
        assert_eq!(eval(&has, r#"{"q":["a","DROP"]}"#), (true, true));
        assert_eq!(eval(&has, r#"{"q":["a"]}"#), (false, false));

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
    fn no_arguments_at_all() {
        let c = cond("args.n", Op::Lte(num("10")));
        assert!(!c.required_holds(None));
        assert!(!c.deny_triggers(None));
        assert!(cond("args.n", Op::Exists(false)).required_holds(None));
    }
}
