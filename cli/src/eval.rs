//! `toolgate eval`.

use crate::args::{read, Args, Failure, Format};
use toolgate_engine::config::load;
use toolgate_engine::offline::{render, request, Defaults, Runner};

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
            Format::Text => print!("{}", render::text(index, outcome.as_ref())),
            Format::Json => println!("{}", render::line(index, outcome.as_ref())),
        }
        runner.clock.advance_secs(a.step);
    }
    Ok(true)
}
