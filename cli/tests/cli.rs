#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The `toolgate` command, run as a user would run it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const SEED: &str = r#"{"version":"1","default":"deny","tools":{"cache_cas":{"limits":[{"counter":"cache_cas_rate","window":"minute","max":30,"scope":"grant"}]}}}"#;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_toolgate"))
}

fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn temp(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("toolgate-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn broken_policies_get_path_precise_messages() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let expected = std::fs::read_to_string(path.with_extension("expected")).unwrap();
        let o = run(&["check", path.to_str().unwrap()], "");
        assert_eq!(o.status.code(), Some(1), "{}", path.display());
        let out = stdout(&o);
        let prefix = format!("{}: ", path.display());
        let lines: Vec<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .collect();
        for want in expected.lines() {
            assert!(
                lines.contains(&want),
                "{}: missing {want:?} in\n{out}",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} broken policies");
}

#[test]
fn check_accepts_valid_policies_and_speaks_json() {
    let p = temp("seed.json", SEED);
    let o = run(&["check", p.to_str().unwrap()], "");
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("valid (1 tool entry, 1 counter)"));
    let bad = temp("bad.json", &SEED.replace("minute", "minutes"));
    let o = run(&["check", bad.to_str().unwrap(), "--format", "json"], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains(r#""path":"tools.cache_cas.limits[0].window","found":"\"minutes\" is not a window","expected":"second, minute, hour or day""#));
}

#[test]
fn eval_counts_across_lines_with_a_clock() {
    let p = temp("seed2.json", SEED);
    let call = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"cache_cas","arguments":{}}}"#;
    let input = format!("{}\n", vec![call; 31].join("\n"));
    let o = run(
        &[
            "eval",
            p.to_str().unwrap(),
            "--grant",
            "Bearer a",
            "--at",
            "2026-11-24T10:31:00Z",
            "--format",
            "json",
        ],
        &input,
    );
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 31);
    assert!(
        lines[29].contains(r#""decision":"allowed""#)
            && lines[29].contains(r#"ratelimit","\"cache_cas_rate\";r=0;t=60"#),
        "{}",
        lines[29]
    );
    assert!(lines[30].contains(
        r#""decision":"denied","reason":"rate_limited","rule":"tools.cache_cas.limits[0]""#
    ));
    assert!(lines[30].contains(r#"["retry-after","60"]"#));
    // With a step the window turns over.
    let o = run(
        &[
            "eval",
            p.to_str().unwrap(),
            "--grant",
            "a",
            "--at",
            "1795516260",
            "--step",
            "2",
        ],
        &input,
    );
    assert!(
        !stdout(&o).contains("denied"),
        "31 calls over 62 seconds span two minutes"
    );
    // An envelope sends raw text and its own headers.
    let o = run(
        &["eval", p.to_str().unwrap()],
        "{\"headers\":{\"content-encoding\":\"gzip\"},\"body\":\"x\"}\n",
    );
    assert!(
        stdout(&o).contains("[1] rejected: unsupported_media_type")
            && stdout(&o).contains("HTTP 415")
    );
    // Its path carries a query; a member it does not know is an error, not ignored.
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cache_cas"}}"#;
    let o = run(
        &["eval", p.to_str().unwrap()],
        &format!("{{\"path\":\"/mcp?name=cache_delete\",\"body\":{call}}}\n"),
    );
    assert!(
        stdout(&o).contains("[1] rejected: invalid_request"),
        "{}",
        stdout(&o)
    );
    let o = run(
        &["eval", p.to_str().unwrap()],
        &format!("{{\"url\":\"/mcp?name=cache_delete\",\"body\":{call}}}\n"),
    );
    let out = format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("unknown member \"url\""), "{out}");
    // An envelope whose body holds keys differing by case deep in the data is still an
    // envelope (the filter accepts such data).
    let deep = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cache_cas","arguments":{"q":{"Type":1,"type":2}}}}"#;
    let o = run(
        &["eval", p.to_str().unwrap()],
        &format!("{{\"headers\":{{\"authorization\":\"Bearer a\"}},\"body\":{deep}}}\n"),
    );
    assert!(stdout(&o).contains("[1] allowed"), "{}", stdout(&o));
}

#[test]
fn test_command_runs_cases() {
    let p = temp("seed3.json", SEED);
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cache_cas"}}"#;
    let cases = format!(
        r#"{{"cases":[
        {{"name":"30 allowed","request":{call},"grant":"a","repeat":30,"expect":"allowed"}},
        {{"name":"31st limited","request":{call},"grant":"a","expect":{{"decision":"denied","reason":"rate_limited","status":200}}}},
        {{"name":"other grant","request":{call},"grant":"b","expect":"allowed"}},
        {{"name":"next minute","request":{call},"grant":"a","advance":60,"expect":"allowed"}},
        {{"name":"delete denied","request":{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"cache_delete"}}}},"expect":{{"decision":"denied","reason":"not_allowed","rule":"default"}}}},
        {{"name":"list passes","request":{{"jsonrpc":"2.0","id":3,"method":"tools/list"}},"expect":"passed"}}
        ]}}"#
    );
    let c = temp("cases.json", &cases);
    let o = run(&["test", p.to_str().unwrap(), c.to_str().unwrap()], "");
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).ends_with("6 passed, 0 failed\n"));
    let wrong = temp(
        "wrong.json",
        &cases.replace(r#""expect":"passed""#, r#""expect":"denied""#),
    );
    let o = run(&["test", p.to_str().unwrap(), wrong.to_str().unwrap()], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("FAIL  list passes: decision passed, expected denied"));
}

#[test]
fn usage_errors_and_hostile_input_never_panic() {
    for args in [
        &[][..],
        &["help"][..],
        &["check"][..],
        &["eval", "/nonexistent"][..],
        &["nope"][..],
        &["eval", "x", "--at"][..],
        &["eval", "x", "--format", "yaml"][..],
    ] {
        let o = run(args, "");
        assert!(matches!(o.status.code(), Some(0..=2)), "{args:?}");
        assert!(
            !String::from_utf8_lossy(&o.stderr).contains("panicked"),
            "{args:?}"
        );
    }
    let p = temp("seed4.json", SEED);
    let garbage =
        "\u{0}\u{ff}{{{{[[[\n\"\\ud800\"\n[]\n{\"body\":5}\n{\"headers\":7,\"body\":\"x\"}\n";
    let o = run(&["eval", p.to_str().unwrap()], garbage);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
    assert!(o.status.code().is_some());
    let o = run(&["help"], "");
    assert!(stdout(&o).contains("EXAMPLES"));
}
