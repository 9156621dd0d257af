//! Rendering decided requests: the text and JSON lines `toolgate eval` prints, shown as
//! they are by the playground.

use crate::config::{Config, Problem};
use crate::outcome::{CallOutcome, Outcome, Verdict};
use crate::reply::{limit_state_headers, quoted};

/// The decision word of an outcome: allowed, denied, rejected or passed (with a `shadow_`
/// prefix when not enforced).
pub fn decision(o: Option<&Outcome>) -> String {
    match o {
        None => "passed".into(),
        Some(o) => o
            .report
            .summary()
            .split(':')
            .next()
            .unwrap_or("passed")
            .to_string(),
    }
}

/// The reason code and rule of the first denial or refusal.
pub fn reason_rule(o: Option<&Outcome>) -> (Option<String>, Option<String>) {
    let Some(o) = o else {
        return (None, None);
    };
    if let Some((kind, _)) = &o.report.rejection {
        return (Some(kind.code().to_string()), None);
    }
    match o.report.first_denial().map(|c| &c.outcome) {
        Some(CallOutcome::Denied { reason, rule, .. }) => {
            (Some(reason.code().to_string()), Some(rule.clone()))
        }
        _ => (None, None),
    }
}

/// The HTTP reply an outcome sends (status, headers, body), or the headers added to a
/// forwarded request's response.
pub fn reply_parts(o: Option<&Outcome>) -> (Option<u16>, Vec<(String, String)>, Option<String>) {
    match o.map(|o| &o.verdict) {
        Some(Verdict::Respond(r)) => (Some(r.status), r.headers.clone(), Some(r.body.clone())),
        Some(Verdict::Forward(f)) => {
            let state = limit_state_headers(&f.limits).into_iter().flatten();
            (None, state.map(|(k, v)| (k.to_string(), v)).collect(), None)
        }
        Some(Verdict::Consult(_)) | None => (None, Vec::new(), None),
    }
}

fn headers_json(h: &[(String, String)]) -> String {
    let items: Vec<String> = h
        .iter()
        .map(|(k, v)| format!("[{},{}]", quoted(k), quoted(v)))
        .collect();
    format!("[{}]", items.join(","))
}

/// The text block describing a decided request (`[N] decision: reason (rule R)` and the
/// reply, indented), each line ending in a newline.
pub fn text(index: usize, o: Option<&Outcome>) -> String {
    let (reason, rule) = reason_rule(o);
    let mut out = format!("[{index}] {}", decision(o));
    if let Some(r) = reason {
        out.push_str(&format!(": {r}"));
    }
    if let Some(r) = rule {
        out.push_str(&format!(" (rule {r})"));
    }
    out.push('\n');
    let (status, headers, body) = reply_parts(o);
    match (status, body) {
        (Some(s), Some(b)) => {
            out.push_str(&format!("    HTTP {s}\n"));
            for (k, v) in headers {
                out.push_str(&format!("    {k}: {v}\n"));
            }
            out.push_str(&format!("    {b}\n"));
        }
        _ => {
            if o.is_some() {
                out.push_str("    forwarded upstream\n");
            }
            for (k, v) in headers {
                out.push_str(&format!("    response gets {k}: {v}\n"));
            }
        }
    }
    out
}

/// One JSON line describing a decided request.
pub fn line(index: usize, o: Option<&Outcome>) -> String {
    let (reason, rule) = reason_rule(o);
    let (status, headers, body) = reply_parts(o);
    let opt = |s: Option<String>| s.map_or("null".to_string(), |s| quoted(&s));
    let mut out = format!(
        "{{\"request\":{index},\"decision\":{},\"reason\":{},\"rule\":{},\"summary\":{}",
        quoted(&decision(o)),
        opt(reason),
        opt(rule),
        quoted(&o.map_or("passed".into(), |o| o.report.summary()))
    );
    match (status, body) {
        (Some(s), Some(b)) => {
            out.push_str(&format!(
                ",\"reply\":{{\"status\":{s},\"headers\":{},\"body\":{}}}",
                headers_json(&headers),
                quoted(&b)
            ));
        }
        _ => out.push_str(&format!(
            ",\"forwarded\":{{\"response_headers\":{}}}",
            headers_json(&headers)
        )),
    }
    out.push('}');
    out
}

/// A policy's problems as a JSON array of `{"path", "found", "expected", "message"}`.
pub fn problems_json(problems: &[Problem]) -> String {
    let items: Vec<String> = problems
        .iter()
        .map(|p| {
            format!(
                "{{\"path\":{},\"found\":{},\"expected\":{},\"message\":{}}}",
                quoted(&p.path),
                quoted(&p.found),
                quoted(&p.expected),
                quoted(&p.to_string())
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

/// What a valid configuration holds, in a few words: `valid (1 tool entry, 1 counter)`.
pub fn summary(c: &Config) -> String {
    let p = &c.policy;
    let (tools, counters) = (p.tools.entries.len(), p.counters.len());
    format!(
        "valid ({tools} tool {}, {counters} counter{}{}{})",
        if tools == 1 { "entry" } else { "entries" },
        if counters == 1 { "" } else { "s" },
        if p.resources.is_some() {
            ", resource rules"
        } else {
            ""
        },
        if p.prompts.is_some() {
            ", prompt rules"
        } else {
            ""
        },
    )
}
