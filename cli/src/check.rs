//! `toolgate check`.

use crate::args::{read, Args, Failure, Format};
use toolgate_engine::offline::render::{self, problems_json};
use toolgate_engine::reply::quoted;

/// Validates a policy; `Ok(true)` when valid.
pub fn run(a: &Args) -> Result<bool, Failure> {
    let [path] = a.files.as_slice() else {
        return Err(Failure::Usage("check takes one POLICY.json".into()));
    };
    let text = read(path)?;
    match toolgate_engine::config::load(&text) {
        Ok(c) => {
            match a.format {
                Format::Text => println!("{path}: {}", render::summary(&c)),
                Format::Json => println!(
                    "{{\"file\":{},\"valid\":true,\"problems\":[]}}",
                    quoted(path)
                ),
            }
            Ok(true)
        }
        Err(problems) => {
            match a.format {
                Format::Text => {
                    for p in &problems {
                        println!("{path}: {p}");
                    }
                    println!(
                        "{path}: {} problem{}",
                        problems.len(),
                        if problems.len() == 1 { "" } else { "s" }
                    );
                }
                Format::Json => println!(
                    "{{\"file\":{},\"valid\":false,\"problems\":{}}}",
                    quoted(path),
                    problems_json(&problems)
                ),
            }
            Ok(false)
        }
    }
}
