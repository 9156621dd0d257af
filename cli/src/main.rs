//! `toolgate`: check, evaluate and test PolicyLayer policies with the engine the Envoy filter
//! runs, so a policy's behaviour is known before it ships.

mod args;
mod cases;
mod check;
mod clock;
mod eval;

use std::process::ExitCode;

const HELP: &str = "\
toolgate: check, evaluate and test Toolgate policies with the engine the Envoy filter runs.

USAGE:
    toolgate check POLICY.json [--format text|json]
    toolgate eval POLICY.json [REQUEST.json | -] [OPTIONS]
    toolgate test POLICY.json CASES.json [--format text|json]
    toolgate help

POLICY.json is a bare PolicyLayer policy or a full Toolgate configuration
({\"policy\": {...}, \"mode\": ...}), exactly what the filter's configuration holds.

check   Validates the policy; prints every problem with its JSON path. Exit status 0 when
        valid, 1 when not (usable as a pre-commit or CI step).

eval    Decides requests as the filter would and prints, per request, the decision, the
        reason code, the rule and the exact reply (status, headers, body). With REQUEST.json
        the file is one request; with - (or nothing) standard input holds one request per
        line. Counters advance across requests; fleet-wide limits (\"store\": \"service\") are
        answered by an in-memory rate limit service. A request is a JSON-RPC body, or an
        envelope {\"headers\": {NAME: VALUE|null}, \"method\": \"POST\", \"path\": \"/mcp\",
        \"body\": BODY} where a string BODY is sent as raw text (to try malformed bodies).
    --grant VALUE        send VALUE as the Authorization header (the default grant source)
    --session ID         send ID as the Mcp-Session-Id header
    --header NAME:VALUE  add a request header (repeatable)
    --address IP         the downstream address (default 127.0.0.1)
    --at TIME            the clock at the first request: Unix seconds or 2026-11-24T10:31:00Z
                         (default: now)
    --step SECONDS       advance the clock by SECONDS after each request (default 0)
    --format text|json   output format (json: one object per request)

test    Runs policy unit tests: CASES.json is {\"cases\": [CASE, ...]}, each CASE
        {\"name\": STRING, \"request\": REQUEST, \"expect\": DECISION or
         {\"decision\": DECISION, \"reason\": CODE, \"rule\": PATH, \"status\": N},
         \"grant\": STRING, \"session\": STRING, \"repeat\": N, \"advance\": SECONDS}.
        DECISION is allowed, denied, rejected or passed. Cases run in order against one
        set of counters from --at (or 2026-01-01T00:00:00Z) and advance the clock by
        \"advance\" seconds before running. Exit status 0 when every case passes.

EXAMPLES:
    toolgate check envoy/policies/seed.json
    echo '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"cache_cas\"}}' \\
        | toolgate eval envoy/policies/seed.json --grant 'Bearer agent-1'
    for i in $(seq 31); do echo '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"cache_cas\"}}'; done \\
        | toolgate eval envoy/policies/seed.json --grant a --at 2026-11-24T10:31:00Z --step 1
    toolgate test envoy/policies/seed.json envoy/policies/tests/seed.cases.json
";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    // `toolgate eval --help` and the like print the usage too.
    let asks_help = argv.iter().any(|a| a == "--help" || a == "-h");
    let result = match argv.first().map(String::as_str) {
        _ if asks_help => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        None | Some("help") => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Some("check") => args::parse(argv.get(1..).unwrap_or(&[])).and_then(|a| check::run(&a)),
        Some("eval") => args::parse(argv.get(1..).unwrap_or(&[])).and_then(|a| eval::run(&a)),
        Some("test") => args::parse(argv.get(1..).unwrap_or(&[])).and_then(|a| cases::run(&a)),
        Some(other) => Err(args::Failure::Usage(format!("unknown command {other:?}"))),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(args::Failure::Usage(m)) => {
            eprintln!("toolgate: {m}\nRun `toolgate help` for usage.");
            ExitCode::from(2)
        }
        Err(args::Failure::Io(m)) => {
            eprintln!("toolgate: {m}");
            ExitCode::from(2)
        }
    }
}
