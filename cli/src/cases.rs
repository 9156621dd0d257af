//! `toolgate test`: policy unit tests kept beside the policy.

use crate::args::{read, Args, Failure, Format};
use toolgate_engine::config::load;
use toolgate_engine::json::{parse_strict, Kind, Value};
use toolgate_engine::offline::{render, request, Defaults, Runner};
use toolgate_engine::reply::quoted;

/// 2026-01-01T00:00:00Z: a fixed start, so tests do not depend on the day they run.
const DEFAULT_START: u64 = 1_767_225_600;

struct Expect {
    decision: String,
    reason: Option<String>,
    rule: Option<String>,
    status: Option<u16>,
}

struct Case<'a> {
    name: String,
    request: Value<'a>,
    expect: Expect,
    grant: Option<String>,
    session: Option<String>,
    repeat: u64,
    advance: u64,
}

fn string(v: Option<Value<'_>>, path: &str) -> Result<Option<String>, String> {
    match v {
        None => Ok(None),
        Some(v) => v
            .as_str()
            .map(|s| Some(s.decode().into_owned()))
            .ok_or_else(|| format!("{path}: expected a string")),
    }
}

fn count(v: Option<Value<'_>>, path: &str, default: u64) -> Result<u64, String> {
    match v {
        None => Ok(default),
        Some(v) => v
            .as_number()
            .and_then(|n| n.raw().parse::<u64>().ok())
            .ok_or_else(|| format!("{path}: expected a whole number")),
    }
}

const DECISIONS: [&str; 4] = ["allowed", "denied", "rejected", "passed"];

fn read_case(v: Value<'_>, i: usize) -> Result<Case<'_>, String> {
    let p = format!("cases[{i}]");
    if v.kind() != Kind::Object {
        return Err(format!("{p}: expected an object"));
    }
    for (k, _) in v.members() {
        if ![
            "name", "request", "expect", "grant", "session", "repeat", "advance",
        ]
        .iter()
        .any(|n| k.eq_str(n))
        {
            return Err(format!("{p}.{}: unknown field; expected name, request, expect, grant, session, repeat or advance", k.decode()));
        }
    }
    let name = string(v.get("name"), &format!("{p}.name"))?.ok_or(format!("{p}.name: missing"))?;
    let request = v.get("request").ok_or(format!("{p}.request: missing"))?;
    let e = v.get("expect").ok_or(format!("{p}.expect: missing"))?;
    let expect = if let Some(d) = e.as_str() {
        Expect {
            decision: d.decode().into_owned(),
            reason: None,
            rule: None,
            status: None,
        }
    } else if e.kind() == Kind::Object {
        let ep = format!("{p}.expect");
        Expect {
            decision: string(e.get("decision"), &format!("{ep}.decision"))?
                .ok_or(format!("{ep}.decision: missing"))?,
            reason: string(e.get("reason"), &format!("{ep}.reason"))?,
            rule: string(e.get("rule"), &format!("{ep}.rule"))?,
            status: e
                .get("status")
                .map(|s| {
                    count(Some(s), &format!("{ep}.status"), 0).and_then(|n| {
                        u16::try_from(n).map_err(|_| format!("{ep}.status: out of range"))
                    })
                })
                .transpose()?,
        }
    } else {
        return Err(format!("{p}.expect: expected a decision or an object"));
    };
    if !DECISIONS.contains(&expect.decision.as_str()) {
        return Err(format!(
            "{p}.expect: {} is not a decision; expected allowed, denied, rejected or passed",
            quoted(&expect.decision)
        ));
    }
    Ok(Case {
        name,
        request,
        expect,
        grant: string(v.get("grant"), &format!("{p}.grant"))?,
        session: string(v.get("session"), &format!("{p}.session"))?,
        repeat: count(v.get("repeat"), &format!("{p}.repeat"), 1)?.max(1),
        advance: count(v.get("advance"), &format!("{p}.advance"), 0)?,
    })
}

/// Runs every case; `Ok(true)` when all pass.
pub fn run(a: &Args) -> Result<bool, Failure> {
    let [policy, cases_path] = a.files.as_slice() else {
        return Err(Failure::Usage(
            "test takes POLICY.json and CASES.json".into(),
        ));
    };
    let config = load(&read(policy)?).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(|p| format!("{policy}: {p}")).collect();
        Failure::Io(format!("the policy is invalid:\n{}", lines.join("\n")))
    })?;
    let text = read(cases_path)?;
    let doc = parse_strict(&text, 64).map_err(|e| Failure::Io(format!("{cases_path}: {e}")))?;
    let list = doc
        .get("cases")
        .filter(|c| c.kind() == Kind::Array)
        .ok_or_else(|| Failure::Io(format!("{cases_path}: expected {{\"cases\": [...]}}")))?;
    let cases: Vec<Case<'_>> = list
        .elements()
        .enumerate()
        .map(|(i, c)| read_case(c, i))
        .collect::<Result<_, _>>()
        .map_err(|e| Failure::Io(format!("{cases_path}: {e}")))?;
    let mut runner =
        Runner::new(config, a.at.unwrap_or(DEFAULT_START), &a.address).map_err(Failure::Io)?;
    let (mut passed, mut failed) = (0usize, 0usize);
    for c in &cases {
        runner.clock.advance_secs(c.advance);
        let defaults = Defaults {
            grant: c.grant.as_deref().or(a.grant.as_deref()),
            session: c.session.as_deref().or(a.session.as_deref()),
            extra: &a.headers,
        };
        let req = request::read(c.request.raw().as_bytes(), &defaults)
            .map_err(|e| Failure::Io(format!("{cases_path}: {}: {e}", c.name)))?;
        let mut failure = None;
        for round in 1..=c.repeat {
            let o = runner.decide(&req);
            let decision = render::decision(o.as_ref());
            let (reason, rule) = render::reason_rule(o.as_ref());
            let (status, _, _) = render::reply_parts(o.as_ref());
            let mut wrong = Vec::new();
            if decision != c.expect.decision {
                wrong.push(format!(
                    "decision {decision}, expected {}",
                    c.expect.decision
                ));
            }
            if c.expect.reason.is_some() && reason != c.expect.reason {
                wrong.push(format!(
                    "reason {}, expected {}",
                    reason.as_deref().unwrap_or("none"),
                    c.expect.reason.as_deref().unwrap_or("")
                ));
            }
            if c.expect.rule.is_some() && rule != c.expect.rule {
                wrong.push(format!(
                    "rule {}, expected {}",
                    rule.as_deref().unwrap_or("none"),
                    c.expect.rule.as_deref().unwrap_or("")
                ));
            }
            if let Some(s) = c.expect.status {
                if status.unwrap_or(0) != s {
                    wrong.push(format!(
                        "status {}, expected {s}",
                        status.map_or("none (forwarded)".into(), |s| s.to_string())
                    ));
                }
            }
            if !wrong.is_empty() {
                let at = if c.repeat > 1 {
                    format!(" (repetition {round} of {})", c.repeat)
                } else {
                    String::new()
                };
                failure = Some(format!("{}{at}", wrong.join("; ")));
                break;
            }
        }
        match (&failure, a.format) {
            (None, Format::Text) => println!("ok    {}", c.name),
            (Some(why), Format::Text) => println!("FAIL  {}: {why}", c.name),
            (f, Format::Json) => println!(
                "{{\"case\":{},\"passed\":{},\"failure\":{}}}",
                quoted(&c.name),
                f.is_none(),
                f.as_deref().map_or("null".into(), quoted)
            ),
        }
        if failure.is_some() {
            failed += 1;
        } else {
            passed += 1;
        }
    }
    if a.format == Format::Text {
        println!("{passed} passed, {failed} failed");
    }
    Ok(failed == 0)
}
