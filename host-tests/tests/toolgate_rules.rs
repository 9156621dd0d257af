//! Tool rules through the real module: hide, actions, and require/deny_if with every
//! condition operator.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

mod support;

use support::*;

#[test]
fn hidden_tools_are_denied_at_call_time() {
    let envoy = start(
        r#"{"version":"1","default":"allow","hide":["cache_delete","admin_*"],"tools":{"cache_flush":{}}}"#,
    );
    let w = envoy.worker(0);
    // The agent is told what it would be of a tool a default-deny policy does not name, so
    // the reply does not show the hidden tool exists; operators see why.
    let unnamed = start(r#"{"version":"1","default":"deny"}"#);
    for tool in ["cache_delete", "CACHE_DELETE", "admin_reset"] {
        let ex = w.send(mcp_as("k", call(1, tool, "{}")));
        assert_eq!(denial_reason(&ex), "hidden", "{tool}");
        let reply = reply_json(&ex);
        assert_eq!(
            denial_text(&reply),
            format!("Toolgate denied tool \"{tool}\": it is not allowed by policy.")
        );
        let other = unnamed.worker(0).send(mcp_as("k", call(1, tool, "{}")));
        assert_eq!(denial_reason(&other), "not_allowed");
        assert_eq!(ex.body_text(), other.body_text(), "{tool}");
    }
    let body = call(2, "cache_flush", "{}");
    assert_forwarded(&w.send(mcp_as("k", body.clone())), body.as_bytes());
    let body = call(3, "cache_get", "{}");
    assert_forwarded(&w.send(mcp_as("k", body.clone())), body.as_bytes());

    let everything = start(r#"{"version":"1","default":"allow","hide":["*"]}"#);
    let ex = everything
        .worker(0)
        .send(mcp_as("k", call(1, "anything", "{}")));
    assert_eq!(denial_reason(&ex), "hidden");
}

#[test]
fn action_deny_with_its_reason_and_require_approval() {
    let envoy = start(
        r#"{"version":"1","default":"allow","tools":{
            "cache_delete":{"action":"deny","reason":"Deletes are not allowed."},
            "cache_flush":{"action":"deny"},
            "pay":{"action":"require_approval","reason":"Payments need a human."},
            "transfer":{"action":"require_approval"}}}"#,
    );
    let w = envoy.worker(0);
    let cases = [
        (
            "cache_delete",
            "tool_denied",
            "Toolgate denied tool \"cache_delete\": Deletes are not allowed.",
        ),
        (
            "cache_flush",
            "tool_denied",
            "Toolgate denied tool \"cache_flush\": this tool may not be used.",
        ),
        (
            "pay",
            "approval_required",
            "Toolgate denied tool \"pay\": Payments need a human.",
        ),
    ];
    for (tool, reason, text) in cases {
        let ex = w.send(mcp_as("k", call(1, tool, "{}")));
        let reply = assert_denied(&ex, Arrangement::ContinueAtHeaders);
        assert_eq!(detail(&reply)["reason"], reason, "{tool}");
        assert_eq!(detail(&reply)["rule"], format!("tools.{tool}.action"));
        assert_eq!(denial_text(&reply), text);
    }
    let ex = w.send(mcp_as("k", call(1, "transfer", "{}")));
    assert_eq!(denial_reason(&ex), "approval_required");
    assert_eq!(
        envoy
            .metrics()
            .counter("toolgate.denials.tool.pay.reason.approval_required"),
        Some(1)
    );
}

const CONDITIONS: &str = r#"{"version":"1","default":"deny","tools":{
    "op_eq":{"require":[{"path":"args.mode","op":"eq","value":"read"}]},
    "op_eq_object":{"require":[{"path":"args.opts","op":"eq","value":{"a":[1,2]}}]},
    "op_neq":{"deny_if":[{"path":"args.mode","op":"neq","value":"read"}]},
    "op_in":{"require":[{"path":"args.region","op":"in","value":["eu","us"]}]},
    "op_not_in":{"require":[{"path":"args.region","op":"not_in","value":["cn","ru"]}]},
    "op_lt":{"require":[{"path":"args.n","op":"lt","value":10}]},
    "op_lte":{"require":[{"path":"args.n","op":"lte","value":10}]},
    "op_gt":{"deny_if":[{"path":"args.n","op":"gt","value":10}]},
    "op_gte":{"require":[{"path":"args.n","op":"gte","value":10}]},
    "op_floor":{"deny_if":[{"path":"args.n","op":"lt","value":1}]},
    "op_regex":{"require":[{"path":"args.path","op":"regex","value":"^/srv/[a-z]+$"}]},
    "op_contains":{"deny_if":[{"path":"args.path","op":"contains","value":".."},{"path":"args.tags","op":"contains","value":"prod"}]},
    "op_exists":{"deny_if":[{"path":"args.force","op":"exists","value":true}]},
    "op_absent":{"require":[{"path":"args.token","op":"exists","value":false}]},
    "op_index":{"require":[{"path":"args.items.0.id","op":"eq","value":1}]},
    "op_alias":{"deny_if":[{"path":"args.file_path","op":"regex","value":"^/etc"}]},
    "op_both":{"require":[{"path":"args.n","op":"lte","value":500},{"path":"args.currency","op":"in","value":["usd","eur"]}],
               "deny_if":[{"path":"args.note","op":"regex","value":"(?i)refund"}],
               "reason":"Only small usd/eur charges without refunds."}}}"#;

/// (tool, arguments, None when allowed or Some((reason, rule, text after the tool name))).
type Case = (
    &'static str,
    &'static str,
    Option<(&'static str, &'static str, &'static str)>,
);

const CASES: &[Case] = &[
    ("op_eq", r#"{"mode":"read"}"#, None),
    (
        "op_eq",
        r#"{"mode":"write"}"#,
        Some((
            "require_failed",
            "tools.op_eq.require[0]",
            "argument \"mode\" must equal \"read\".",
        )),
    ),
    (
        "op_eq",
        r#"{}"#,
        Some((
            "require_failed",
            "tools.op_eq.require[0]",
            "argument \"mode\" must equal \"read\".",
        )),
    ),
    ("op_eq", r#"{"mode":"re\u0061d"}"#, None),
    ("op_eq_object", r#"{"opts":{"a":[1,2.0]}}"#, None),
    (
        "op_eq_object",
        r#"{"opts":{"a":[2,1]}}"#,
        Some((
            "require_failed",
            "tools.op_eq_object.require[0]",
            "argument \"opts\" must equal the configured object.",
        )),
    ),
    ("op_neq", r#"{"mode":"read"}"#, None),
    (
        "op_neq",
        r#"{"mode":"write"}"#,
        Some((
            "deny_if_matched",
            "tools.op_neq.deny_if[0]",
            "argument \"mode\" must not differ from \"read\".",
        )),
    ),
    ("op_neq", r#"{}"#, None),
    ("op_in", r#"{"region":"eu"}"#, None),
    (
        "op_in",
        r#"{"region":"apac"}"#,
        Some((
            "require_failed",
            "tools.op_in.require[0]",
            "argument \"region\" must be one of [\"eu\", \"us\"].",
        )),
    ),
    ("op_not_in", r#"{"region":"eu"}"#, None),
    // Case and padding a server may fold away: "CN " may be read as "cn".
    (
        "op_not_in",
        r#"{"region":"CN "}"#,
        Some((
            "require_failed",
            "tools.op_not_in.require[0]",
            "argument \"region\" must be none of [\"cn\", \"ru\"].",
        )),
    ),
    (
        "op_not_in",
        r#"{"region":"cn"}"#,
        Some((
            "require_failed",
            "tools.op_not_in.require[0]",
            "argument \"region\" must be none of [\"cn\", \"ru\"].",
        )),
    ),
    ("op_lt", r#"{"n":9.99}"#, None),
    (
        "op_lt",
        r#"{"n":10}"#,
        Some((
            "require_failed",
            "tools.op_lt.require[0]",
            "argument \"n\" must be a number less than 10.",
        )),
    ),
    (
        "op_lt",
        r#"{"n":"5"}"#,
        Some((
            "require_failed",
            "tools.op_lt.require[0]",
            "argument \"n\" must be a number less than 10.",
        )),
    ),
    ("op_lte", r#"{"n":10}"#, None),
    ("op_lte", r#"{"n":1e1}"#, None),
    (
        "op_lte",
        r#"{"n":10.000001}"#,
        Some((
            "require_failed",
            "tools.op_lte.require[0]",
            "argument \"n\" must be a number at most 10.",
        )),
    ),
    ("op_gt", r#"{"n":10}"#, None),
    (
        "op_gt",
        r#"{"n":11}"#,
        Some((
            "deny_if_matched",
            "tools.op_gt.deny_if[0]",
            "argument \"n\" must not be a number greater than 10.",
        )),
    ),
    (
        "op_gt",
        r#"{"n":"11"}"#,
        Some((
            "deny_if_matched",
            "tools.op_gt.deny_if[0]",
            "argument \"n\" must not be a number greater than 10.",
        )),
    ),
    // null: no value, but 0 to a JavaScript server comparing or computing with it.
    ("op_gt", r#"{"n":null}"#, None),
    ("op_floor", r#"{"n":1}"#, None),
    (
        "op_floor",
        r#"{"n":null}"#,
        Some((
            "deny_if_matched",
            "tools.op_floor.deny_if[0]",
            "argument \"n\" must not be a number less than 1.",
        )),
    ),
    ("op_gte", r#"{"n":10}"#, None),
    (
        "op_gte",
        r#"{"n":-10}"#,
        Some((
            "require_failed",
            "tools.op_gte.require[0]",
            "argument \"n\" must be a number at least 10.",
        )),
    ),
    ("op_regex", r#"{"path":"/srv/data"}"#, None),
    (
        "op_regex",
        r#"{"path":"/etc/passwd"}"#,
        Some((
            "require_failed",
            "tools.op_regex.require[0]",
            "argument \"path\" must match the pattern \"^/srv/[a-z]+$\".",
        )),
    ),
    (
        "op_regex",
        r#"{"path":"/srv/data\n/etc"}"#,
        Some((
            "require_failed",
            "tools.op_regex.require[0]",
            "argument \"path\" must match the pattern \"^/srv/[a-z]+$\".",
        )),
    ),
    ("op_contains", r#"{"path":"/srv/a","tags":["dev"]}"#, None),
    (
        "op_contains",
        r#"{"path":"/srv/../etc"}"#,
        Some((
            "deny_if_matched",
            "tools.op_contains.deny_if[0]",
            "argument \"path\" must not contain \"..\".",
        )),
    ),
    (
        "op_contains",
        r#"{"path":"/srv/a","tags":["dev","Prod"]}"#,
        Some((
            "deny_if_matched",
            "tools.op_contains.deny_if[1]",
            "argument \"tags\" must not contain \"prod\".",
        )),
    ),
    (
        "op_contains",
        r#"{"tags":["dev","prod"]}"#,
        Some((
            "deny_if_matched",
            "tools.op_contains.deny_if[1]",
            "argument \"tags\" must not contain \"prod\".",
        )),
    ),
    ("op_exists", r#"{"mode":"x"}"#, None),
    (
        "op_exists",
        r#"{"force":false}"#,
        Some((
            "deny_if_matched",
            "tools.op_exists.deny_if[0]",
            "argument \"force\" must not be given.",
        )),
    ),
    ("op_absent", r#"{}"#, None),
    (
        "op_absent",
        r#"{"token":null}"#,
        Some((
            "require_failed",
            "tools.op_absent.require[0]",
            "argument \"token\" must be left out.",
        )),
    ),
    ("op_index", r#"{"items":[{"id":1},{"id":2}]}"#, None),
    (
        "op_index",
        r#"{"items":[{"id":2},{"id":1}]}"#,
        Some((
            "require_failed",
            "tools.op_index.require[0]",
            "argument \"items.0.id\" must equal 1.",
        )),
    ),
    ("op_both", r#"{"n":500,"currency":"usd"}"#, None),
    (
        "op_both",
        r#"{"n":501,"currency":"usd"}"#,
        Some((
            "require_failed",
            "tools.op_both.require[0]",
            "Only small usd/eur charges without refunds.",
        )),
    ),
    (
        "op_both",
        r#"{"n":5,"currency":"gbp"}"#,
        Some((
            "require_failed",
            "tools.op_both.require[1]",
            "Only small usd/eur charges without refunds.",
        )),
    ),
    (
        "op_both",
        r#"{"n":5,"currency":"eur","note":"a REFUND"}"#,
        Some((
            "deny_if_matched",
            "tools.op_both.deny_if[0]",
            "Only small usd/eur charges without refunds.",
        )),
    ),
    // A server with an alias generator or key-casing middleware reads these as file_path.
    ("op_alias", r#"{"file_path":"/tmp/x"}"#, None),
    (
        "op_alias",
        r#"{"filePath":"/etc/passwd"}"#,
        Some((
            "deny_if_matched",
            "tools.op_alias.deny_if[0]",
            "argument \"file_path\" must not match the pattern \"^/etc\".",
        )),
    ),
    (
        "op_alias",
        r#"{"file_path":"/tmp/x","file-path":"/etc/shadow"}"#,
        Some((
            "deny_if_matched",
            "tools.op_alias.deny_if[0]",
            "argument \"file_path\" must not match the pattern \"^/etc\".",
        )),
    ),
];

#[test]
fn require_and_deny_if_with_every_operator() {
    let envoy = start(CONDITIONS);
    let w = envoy.worker(0);
    for (i, (tool, args, expected)) in CASES.iter().enumerate() {
        let body = call(i as u64, tool, args);
        let ex = w.send(mcp_as("k", body.clone()));
        match expected {
            None => {
                assert_forwarded(&ex, body.as_bytes());
                assert_eq!(decision(&ex), "allowed", "{tool} {args}");
            }
            Some((reason, rule, text)) => {
                let reply = assert_denied(&ex, Arrangement::ContinueAtHeaders);
                assert_eq!(reply["id"], i as u64);
                assert_eq!(detail(&reply)["reason"], *reason, "{tool} {args}");
                assert_eq!(detail(&reply)["rule"], *rule, "{tool} {args}");
                assert_eq!(
                    denial_text(&reply),
                    format!("Toolgate denied tool \"{tool}\": {text}"),
                    "{tool} {args}"
                );
                assert_eq!(decision(&ex), format!("denied:{reason}:{tool}"));
            }
        }
    }
    // Every operator was exercised both ways.
    for op in [
        "eq", "neq", "in", "not_in", "lt", "lte", "gt", "gte", "regex", "contains", "exists",
    ] {
        let tool = format!("op_{op}");
        let tried: Vec<_> = CASES.iter().filter(|c| c.0 == tool).collect();
        assert!(
            tried.iter().any(|c| c.2.is_none()) && tried.iter().any(|c| c.2.is_some()),
            "{op} needs an allowed and a denied case"
        );
    }
    // Arguments never reach the logs.
    assert!(envoy.logs().containing("REFUND").is_empty());
}

#[test]
fn look_alike_argument_keys_cannot_satisfy_require_nor_dodge_deny_if() {
    let envoy = start(CONDITIONS);
    let w = envoy.worker(0);
    // "PATH" is not "path": require fails.
    let ex = w.send(mcp_as("k", call(1, "op_regex", r#"{"PATH":"/srv/a"}"#)));
    assert_eq!(denial_reason(&ex), "require_failed");
    // Both spellings at once: a lenient server could read either, so it is refused.
    let ex = w.send(mcp_as(
        "k",
        call(1, "op_regex", r#"{"path":"/srv/a","Path":"/etc"}"#),
    ));
    assert_rejected(&ex, Arrangement::ContinueAtHeaders, 400, -32600);
}
