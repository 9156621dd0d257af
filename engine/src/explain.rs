//! The text an agent reads when a call is denied: what happened and what it can do.

use crate::condition::{Condition, Op};
use crate::json::Owned;
use crate::outcome::Reason;
use std::fmt::Write as _;

/// Longest rendering of a literal in a message.
const LITERAL_MAX: usize = 80;

fn literal(o: &Owned) -> String {
    let s = match o {
        Owned::Null => "null".to_string(),
        Owned::Bool(b) => b.to_string(),
        Owned::Number(n) => n.as_number().raw().to_string(),
        Owned::String(s) => crate::reply::quoted(s),
        Owned::Array(items) => {
            let inner: Vec<String> = items.iter().map(literal).collect();
            format!("[{}]", inner.join(", "))
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
    match op {
        Op::Eq(v) => format!("equal {}", literal(v)),
        Op::Neq(v) => format!("differ from {}", literal(v)),
        Op::In(vs) => format!("be one of {}", literal(&Owned::Array(vs.clone()))),
        Op::NotIn(vs) => format!("be none of {}", literal(&Owned::Array(vs.clone()))),
        Op::Lt(n) => format!("be a number less than {}", number(n)),
        Op::Lte(n) => format!("be a number at most {}", number(n)),
        Op::Gt(n) => format!("be a number greater than {}", number(n)),
        Op::Gte(n) => format!("be a number at least {}", number(n)),
        Op::Regex(re) => format!("match the pattern {}", crate::reply::quoted(re.as_str())),
        Op::Contains(v) => format!("contain {}", literal(v)),
        Op::Exists(true) => "be given".to_string(),
        Op::Exists(false) => "be left out".to_string(),
    }
}

/// The explanation of a failed `require` condition.
pub(crate) fn require_failed(c: &Condition) -> String {
    format!("argument \"{}\" must {}", c.path.argument(), phrase(&c.op))
}

/// The explanation of a triggered `deny_if` condition.
pub(crate) fn deny_if_matched(c: &Condition) -> String {
    format!(
        "argument \"{}\" must not {}",
        c.path.argument(),
        phrase(&c.op)
    )
}

/// The sentence for a denial: a configured `reason` replaces the generated explanation.
pub(crate) fn denial_message(
    noun: &str,
    name: &str,
    reason: Reason,
    configured: Option<&str>,
    explanation: &str,
) -> String {
    let mut m = String::new();
    if reason == Reason::BatchRefused {
        let _ = write!(
            m,
            "Toolgate refused this request for {noun} \"{name}\": {explanation}."
        );
        return m;
    }
    let _ = write!(m, "Toolgate denied {noun} \"{name}\": ");
    match configured {
        Some(r) => m.push_str(r),
        None => {
            m.push_str(explanation);
            m.push('.');
        }
    }
    m
}
