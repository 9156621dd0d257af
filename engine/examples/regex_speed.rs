//! Toolgate's regular expressions against regex-lite on the same 1 MiB text, interleaved,
//! median of 11 rounds each: a measurement, printed as the ratio of our time to theirs.
//!
//!     cargo run --release -p toolgate-engine --example regex_speed
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};
use toolgate_engine::regex::Regex;

const PATTERNS: &[&str] = &[
    r"^/etc",
    r"(?i)BEGIN [A-Z ]*PRIVATE KEY",
    r"\bDROP\s+TABLE\b",
    r"[0-9]{3}-[0-9]{4}",
    r"(a|b|c|d|e)+z$",
    r"secret",
];

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let text = "the quick brown fox jumps over the lazy dog 0123456789 ".repeat(19_065);
    println!(
        "{:<32} {:>12} {:>12} {:>7}",
        "pattern", "regex-lite", "toolgate", "ratio"
    );
    for p in PATTERNS {
        let theirs = regex_lite::RegexBuilder::new(p)
            .size_limit(1 << 16)
            .nest_limit(64)
            .build()
            .unwrap();
        let ours = Regex::new(p).unwrap();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..11 {
            let t = Instant::now();
            let x = std::hint::black_box(theirs.is_match(&text));
            a.push(t.elapsed());
            let t = Instant::now();
            let y = std::hint::black_box(ours.is_match(&text));
            b.push(t.elapsed());
            assert_eq!(x, y, "{p}");
        }
        let (a, b) = (median(a), median(b));
        println!(
            "{p:<32} {:>12.2?} {:>12.2?} {:>6.2}x",
            a,
            b,
            b.as_secs_f64() / a.as_secs_f64()
        );
    }
}
