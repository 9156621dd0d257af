//! `toolgate eval`.

use crate::args::{read, Args, Failure, Format};
use crate::json_out;
use crate::request::{self, Defaults};
use crate::runner::{load, Runner};
use toolgate_engine::outcome::Outcome;

fn print_text(index: usize, o: Option<&Outcome>) {
    let (reason, rule) = json_out::reason_rule(o);
    let mut head = format!("[{index}] {}", json_out::decision(o));
    if let Some(r) = reason {
        head.push_str(&format!(": {r}"));
    }
    if let Some(r) = rule {
        head.push_str(&format!(" (rule {r})"));
    }
    println!("{head}");
    let (status, headers, body) = json_out::reply_parts(o);
    match (status, body) {
        (Some(s), Some(b)) => {
            println!("    HTTP {s}");
            for (k, v) in headers {
                println!("    {k}: {v}");
            }
            println!("    {b}");
        }
        _ => {
            if o.is_some() {
                println!("    forwarded upstream");
            }
            for (k, v) in headers {
                println!("    response gets {k}: {v}");
            }
        }
    }
}

/// Decides requests from a file or standard input.
pub fn run(a: &Args) -> Result<bool, Failure> {
    let (policy, input) = match a.files.as_slice() {
        [p] => (p, "-"),
        [p, r] => (p, r.as_str()),
        _ => {
            return Err(Failure::Usage(
                "eval takes POLICY.json and optionally REQUEST.json or -".into(),
            ))
        }
    };
    let config = load(&read(policy)?).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(|p| format!("{policy}: {p}")).collect();
        Failure::Io(format!("the policy is invalid:\n{}", lines.join("\n")))
    })?;
    let mut runner = Runner::new(config, a.at.unwrap_or_else(crate::clock::now), &a.address)
        .map_err(Failure::Io)?;
    let text = read(input)?;
    // A file is one request; standard input holds one per line.
    let requests: Vec<&[u8]> = if input == "-" {
        text.split(|&c| c == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .collect()
    } else {
        vec![text.as_slice()]
    };
    let defaults = Defaults {
        grant: a.grant.as_deref(),
        session: a.session.as_deref(),
        extra: &a.headers,
    };
    for (i, raw) in requests.iter().enumerate() {
        let index = i + 1;
        let req = request::read(raw, &defaults)
            .map_err(|e| Failure::Usage(format!("request {index}: {e}")))?;
        let outcome = runner.decide(&req);
        match a.format {
            Format::Text => print_text(index, outcome.as_ref()),
            Format::Json => println!("{}", json_out::line(index, outcome.as_ref())),
        }
        runner.clock.advance_secs(a.step);
    }
    Ok(true)
}
