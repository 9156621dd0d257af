//! The text an agent reads when a call is denied: what happened and what it can do.

use crate::condition::{Condition, Op};
use crate::json::Owned;
use crate::outcome::Reason;

/// Longest rendering of a literal in a message.
const LITERAL_MAX: usize = 80;

fn literal(o: &Owned) -> String {
    let s = match o {
        Owned::Null => "null".to_string(),
        Owned::Bool(b) => (if *b { "true" } else { "false" }).to_string(),
        Owned::Number(n) => n.as_number().raw().to_string(),
        Owned::String(s) => crate::reply::quoted(s),
        Owned::Array(items) => {
            let mut s = String::from("[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                s.push_str(&literal(item));
            }
            s.push(']');
            s
        }
        Owned::Object(_) => "the configured object".to_string(),
    };
    if s.chars().count() > LITERAL_MAX {
        let mut t: String = s.chars().take(LITERAL_MAX).collect();
        t.push_str("...");
        t
    } else {
        s
    }
}

fn number(n: &crate::json::OwnedNumber) -> String {
    n.as_number().raw().to_string()
}

/// What a condition asks of its argument, after "must" or "must not".
fn phrase(op: &Op) -> String {
    let (head, rest) = match op {
        Op::Eq(v) => ("equal ", literal(v)),
        Op::Neq(v) => ("differ from ", literal(v)),
        Op::In(vs) => ("be one of ", literal(&Owned::Array(vs.clone()))),
        Op::NotIn(vs) => ("be none of ", literal(&Owned::Array(vs.clone()))),
        Op::Lt(n) => ("be a number less than ", number(n)),
        Op::Lte(n) => ("be a number at most ", number(n)),
        Op::Gt(n) => ("be a number greater than ", number(n)),
        Op::Gte(n) => ("be a number at least ", number(n)),
        Op::Regex(re) => ("match the pattern ", crate::reply::quoted(re.as_str())),
        Op::Contains(v) => ("contain ", literal(v)),
        Op::Exists(true) => ("be given", String::new()),
        Op::Exists(false) => ("be left out", String::new()),
    };
    [head, &rest].concat()
}

/// The explanation of a failed `require` condition.
pub(crate) fn require_failed(c: &Condition) -> String {
    ["argument \"", c.path.argument(), "\" must ", &phrase(&c.op)].concat()
}

/// The explanation of a triggered `deny_if` condition.
pub(crate) fn deny_if_matched(c: &Condition) -> String {
    [
        "argument \"",
        c.path.argument(),
        "\" must not ",
        &phrase(&c.op),
    ]
    .concat()
}

/// The sentence for a denial: a configured `reason` replaces the generated explanation.
pub(crate) fn denial_message(
    noun: &str,
    name: &str,
    reason: Reason,
    configured: Option<&str>,
    explanation: &str,
) -> String {
    if reason == Reason::BatchRefused {
        return [
            "Toolgate refused this request for ",
            noun,
            " \"",
            name,
            "\": ",
            explanation,
            ".",
        ]
        .concat();
    }
    let mut m = ["Toolgate denied ", noun, " \"", name, "\": "].concat();
    match configured {
        Some(r) => m.push_str(r),
        None => {
            m.push_str(explanation);
            m.push('.');
        }
    }
    m
}
