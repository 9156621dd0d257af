#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The engine's decisions, feature by feature, through its public API.

mod common;
use common::*;
use toolgate_engine::outcome::{CallOutcome, Reason, Rejection, ToolLabel, Verdict};
use toolgate_engine::NoAttributes;

#[test]
fn seed_policy_caps_cache_cas_at_30_per_minute_per_grant() {
    let mut h = Harness::new(SEED);
    h.clock.advance_secs(5);
    for i in 0..30 {
        let o = h.call(
            "Bearer a",
            "cache_cas",
            r#"{"key":"k","value":"v","cas":1,"expire":60}"#,
        );
        assert!(forwarded(&o), "call {i} was not forwarded: {:?}", o.report);
        assert_eq!(o.report.summary(), "allowed");
        if let Verdict::Forward(f) = &o.verdict {
            assert_eq!(f.limits[0].remaining, 29 - i);
        }
    }
    let o = h.call("Bearer a", "cache_cas", r#"{"key":"k"}"#);
    assert_eq!(reason(&o), Some(Reason::RateLimited));
    assert_eq!(status(&o), 200);
    assert_eq!(header(&o, "retry-after").as_deref(), Some("55"));
    assert_eq!(
        header(&o, "ratelimit-policy").as_deref(),
        Some("\"cache_cas_rate\";q=30;w=60")
    );
    assert_eq!(
        header(&o, "ratelimit").as_deref(),
        Some("\"cache_cas_rate\";r=0;t=55")
    );
    assert_eq!(
        reply_body(&o),
        r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"Toolgate denied tool \"cache_cas\": rate limit of 30 calls per minute reached (counter \"cache_cas_rate\"); retry in 55 seconds."}],"isError":true,"resultType":"complete","_meta":{"toolgate/decision":{"reason":"rate_limited","rule":"tools.cache_cas.limits[0]","counter":"cache_cas_rate","retry_after":55}}}}"#
    );
    assert_eq!(o.report.summary(), "denied:rate_limited:cache_cas");
    // Another grant has its own count.
    assert!(forwarded(&h.call("Bearer b", "cache_cas", "{}")));
    // The next calendar minute starts afresh.
    h.clock.advance_secs(55);
    assert!(forwarded(&h.call("Bearer a", "cache_cas", "{}")));
    // Every other tool is denied under default deny, and is not counted.
    let o = h.call("Bearer a", "cache_delete", r#"{"key":"k"}"#);
    assert_eq!(reason(&o), Some(Reason::NotAllowed));
    assert!(reply_body(&o).contains(
        r#""text":"Toolgate denied tool \"cache_delete\": it is not allowed by policy.""#
    ));
    assert_eq!(o.report.calls[0].tool, ToolLabel::Other);
}

#[test]
fn other_methods_pass() {
    let mut h = Harness::new(SEED);
    for body in [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":"s1","result":{"content":[]}}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///x"}}"#,
    ] {
        let o = h.post("Bearer a", body);
        assert!(forwarded(&o), "{body}");
        assert_eq!(o.report.summary(), "passed");
    }
}

#[test]
fn names_match_case_insensitively_and_invalid_names_are_refused() {
    let mut h = Harness::new(
        r#"{"version":"1","default":"allow","tools":{"cache_delete":{"action":"deny","reason":"Deletes are not allowed."}}}"#,
    );
    for name in [
        "cache_delete",
        "CACHE_DELETE",
        "Cache_Delete",
        "cache\\u005fdelete",
    ] {
        let o = h.call("k", name, "{}");
        assert_eq!(reason(&o), Some(Reason::ToolDenied), "{name}");
        assert!(reply_body(&o).contains("Deletes are not allowed."));
    }
    for name in [
        "cache_delete ",
        " cache_delete",
        "cache_delete\\u0000",
        "ｃache_delete",
        "cache\\u200bdelete",
        "",
        "cache/delete",
    ] {
        let o = h.call("k", name, "{}");
        assert_eq!(reason(&o), Some(Reason::InvalidToolName), "{name:?}");
    }
    let o = h.call("k", "cache_get", "{}");
    assert!(forwarded(&o));
    // Names of other visible ASCII are judged only when the policy lists them exactly.
    let mut odd = Harness::new(
        r#"{"version":"1","default":"allow","tools":{"github:create_issue":{},"git/push":{"action":"deny"},"cache_delete":{"action":"deny"}}}"#,
    );
    assert!(forwarded(&odd.call("k", "github:create_issue", "{}")));
    assert!(forwarded(&odd.call("k", "GitHub:Create_Issue", "{}")));
    assert_eq!(
        reason(&odd.call("k", "git/push", "{}")),
        Some(Reason::ToolDenied)
    );
    for unlisted in ["github:delete_repo", "cache/delete", "cache:delete"] {
        assert_eq!(
            reason(&odd.call("k", unlisted, "{}")),
            Some(Reason::InvalidToolName),
            "{unlisted}"
        );
    }
    assert!(
        toolgate_engine::config::load(
            r#"{"version":"1","default":"allow","tools":{"github:*":{}}}"#.as_bytes()
        )
        .is_err(),
        "a glob of other characters is refused"
    );
    let o = h.post(
        "k",
        r#"{"jsonrpc":"2.0","id":1,"method":"TOOLS/CALL","params":{"name":"cache_delete"}}"#,
    );
    assert_eq!(
        reason(&o),
        Some(Reason::ToolDenied),
        "method case variants are tools/call"
    );
    // Routers that map methods onto handler names reach tools/call from these too.
    for method in ["tools_call", "Tools.Call", "toolsCall", "tools-call"] {
        let o = h.post(
            "k",
            &format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{{"name":"cache_delete"}}}}"#
            ),
        );
        assert_eq!(reason(&o), Some(Reason::ToolDenied), "{method}");
    }
}

#[test]
fn names_a_server_may_respell_meet_the_rules_of_the_name_they_respell() {
    // Dispatchers that look a tool up by `name.replace("-", "_")`, `camelCase(name)` or
    // its letters alone run `cache_delete` for each of these.
    let mut h = Harness::new(
        r#"{"version":"1","default":"allow","hide":["secret_tool","admin_*"],"tools":{
            "cache_delete":{"action":"deny","reason":"Deletes are not allowed."},
            "drop_*":{"action":"deny"},
            "cache_cas":{"limits":[{"counter":"cas","window":"minute","max":3,"scope":"grant"}]},
            "transfer":{"deny_if":[{"path":"args.amount","op":"gt","value":100}]}}}"#,
    );
    for name in [
        "cache-delete",
        "cacheDelete",
        "CacheDelete",
        "cache.delete",
        "cachedelete",
        "CACHEDELETE",
        "_cache__delete_",
    ] {
        let o = h.call("k", name, "{}");
        assert_eq!(reason(&o), Some(Reason::ToolDenied), "{name}");
        assert!(
            reply_body(&o).contains("Deletes are not allowed."),
            "{name}"
        );
    }
    // Globs match whole words of the respelling, not its letters; the words of the name
    // as sent and lower-cased (`name.lower().replace("-", "_")` runs `drop_table`).
    for name in [
        "dropTable",
        "drop-table",
        "Drop.Table",
        "dRop-table",
        "dROP_TABLE",
    ] {
        assert_eq!(
            reason(&h.call("k", name, "{}")),
            Some(Reason::ToolDenied),
            "{name}"
        );
    }
    // Globs keep to whole words, so a name of one word (`dropusers`) does not meet them by
    // its letters: a registry keyed by letters alone that finds `drop_users` by it is
    // covered for exact entries only (SECURITY.md).
    for name in ["dropped_rows", "droppedRows", "dropper", "dropusers"] {
        assert!(forwarded(&h.call("k", name, "{}")), "{name}");
    }
    // Hidden names stay hidden, and the agent is told what an unnamed name gets.
    for name in [
        "secretTool",
        "secret-tool",
        "adminReset",
        "admin.reset",
        "aDmin-reset",
        "sEcret-tool",
    ] {
        let o = h.call("k", name, "{}");
        assert_eq!(reason(&o), Some(Reason::Hidden), "{name}");
        assert!(!reply_body(&o).contains("secret_tool"), "{name}");
    }
    // Conditions and limits apply to every spelling; one count is shared.
    let o = h.call("k", "Transfer-", r#"{"amount":500}"#);
    assert_eq!(reason(&o), Some(Reason::DenyIfMatched));
    assert!(forwarded(&h.call("k", "TRANSFER", r#"{"amount":5}"#)));
    for name in ["cache_cas", "cache-cas", "cacheCas"] {
        assert!(forwarded(&h.call("g", name, "{}")), "{name}");
    }
    let o = h.call("g", "CacheCas", "{}");
    assert_eq!(reason(&o), Some(Reason::RateLimited));
    assert!(forwarded(&h.call("other", "cacheCAS", "{}")));
    // A respelling only adds: an allowed name as sent stays allowed when its respelling
    // meets nothing, and a name denied as sent stays denied.
    let mut strict = Harness::new(
        r#"{"version":"1","default":"deny","tools":{"cache_cas":{},"deleteAll":{},"delete_*":{"action":"deny"}}}"#,
    );
    assert!(forwarded(&strict.call("k", "cache_cas", "{}")));
    assert_eq!(
        reason(&strict.call("k", "cache-cas", "{}")),
        Some(Reason::NotAllowed)
    );
    assert_eq!(
        reason(&strict.call("k", "delete_all", "{}")),
        Some(Reason::ToolDenied)
    );
    assert!(forwarded(&strict.call("k", "deleteAll", "{}")));
    // An exact entry keeps a glob off the word forms it has itself, as sent and lower-cased:
    // `getUser` and `getuser` are its own, not the catch-all's.
    let mut catch_all = Harness::new(
        r#"{"version":"1","default":"allow","tools":{"getUser":{},"*":{"action":"deny"}}}"#,
    );
    for name in ["getUser", "getuser", "GETUSER"] {
        assert!(forwarded(&catch_all.call("k", name, "{}")), "{name}");
    }
    // As sent, `get_user` is another name, which the catch-all denies.
    assert_eq!(
        reason(&catch_all.call("k", "get_user", "{}")),
        Some(Reason::ToolDenied)
    );
    // An exact entry sharing a name's letters keeps only the globs of the word forms it
    // has itself: `delete-all` is `delete_all` to a server, which `delete_*` denies.
    let mut letters = Harness::new(
        r#"{"version":"1","default":"allow","tools":{"deleteall":{},"delete_*":{"action":"deny"}}}"#,
    );
    assert!(forwarded(&letters.call("k", "deleteall", "{}")));
    for name in ["delete-all", "deleteAll", "DELETE_ALL"] {
        assert_eq!(
            reason(&letters.call("k", name, "{}")),
            Some(Reason::ToolDenied),
            "{name}"
        );
    }
    // Two entries one respelling reaches: a call naming either meets both.
    let mut twins = Harness::new(
        r#"{"version":"1","default":"allow","tools":{"get_item":{},"getItem":{"action":"deny"}}}"#,
    );
    for name in ["get_item", "GET_ITEM", "get-item", "getitem"] {
        assert_eq!(
            reason(&twins.call("k", name, "{}")),
            Some(Reason::ToolDenied),
            "{name}"
        );
    }
}

#[test]
fn hide_denies_at_call_time() {
    let mut h = Harness::new(
        r#"{"version":"1","default":"allow","hide":["cache_delete"],"tools":{"cache_flush":{}}}"#,
    );
    let o = h.call("k", "cache_delete", "{}");
    assert_eq!(reason(&o), Some(Reason::Hidden));
    // The agent is told what it would be told of a tool the policy does not name.
    let mut unnamed = Harness::new(r#"{"version":"1","default":"deny"}"#);
    assert_eq!(
        reply_body(&o),
        reply_body(&unnamed.call("k", "cache_delete", "{}"))
    );
    assert!(!reply_body(&o).contains("hid"), "{}", reply_body(&o));
    assert!(matches!(o.report.calls[0].tool, ToolLabel::Policy(_)));
    assert!(forwarded(&h.call("k", "cache_flush", "{}")));
    let mut all = Harness::new(r#"{"version":"1","default":"allow","hide":["*"]}"#);
    assert_eq!(
        reason(&all.call("k", "anything", "{}")),
        Some(Reason::Hidden)
    );
    // A hidden name is answered as its unnamed neighbours are: one that is no valid tool
    // name as such, one under a glob that denies as the glob does.
    let mut globbed = Harness::new(
        r#"{"version":"1","default":"deny","hide":["github:secret","admin_secret","db_drop"],"tools":{"admin_*":{"action":"deny","reason":"Admin tools are off limits."},"db_*":{}}}"#,
    );
    for (hidden, neighbour) in [
        ("github:secret", "github:other"),
        ("admin_secret", "admin_whatever"),
    ] {
        let o = globbed.call("k", hidden, "{}");
        assert_eq!(reason(&o), Some(Reason::Hidden), "{hidden}");
        let n = globbed.call("k", neighbour, "{}");
        assert_eq!(
            reply_body(&o).replace(hidden, "NAME"),
            reply_body(&n).replace(neighbour, "NAME"),
        );
    }
    // Under a glob that allows, its neighbours reach the server: it can only be refused.
    assert_eq!(
        reason(&globbed.call("k", "db_drop", "{}")),
        Some(Reason::Hidden)
    );
    // Nor does a hidden tool's own rule show: not its reason, nor its limits.
    let mut ruled = Harness::new(
        r#"{"version":"1","default":"deny","hide":["cache_delete"],"tools":{"cache_delete":{"action":"deny","reason":"Deletes go through the ticket queue.","limits":[{"counter":"d","window":"minute","max":1}]}}}"#,
    );
    for _ in 0..2 {
        let o = ruled.call("k", "cache_delete", "{}");
        assert_eq!(reason(&o), Some(Reason::Hidden));
        assert_eq!(
            reply_body(&o),
            reply_body(&unnamed.call("k", "cache_delete", "{}"))
        );
    }
}

#[test]
fn actions_and_conditions() {
    let mut h = Harness::new(
        r#"{"version":"1","default":"deny","tools":{
        "pay":{"action":"require_approval","reason":"Payments need a human."},
        "charge":{"require":[{"path":"args.amount","op":"lte","value":500},{"path":"args.currency","op":"in","value":["usd","eur"]}],
                  "deny_if":[{"path":"args.note","op":"regex","value":"(?i)refund"}]},
        "read":{"require":[{"path":"args.path","op":"regex","value":"^/srv/"}],"deny_if":[{"path":"args.path","op":"contains","value":".."}]}}}"#,
    );
    let o = h.call("k", "pay", "{}");
    assert_eq!(reason(&o), Some(Reason::ApprovalRequired));
    assert!(reply_body(&o).contains("Payments need a human."));
    assert!(forwarded(&h.call(
        "k",
        "charge",
        r#"{"amount":500,"currency":"usd"}"#
    )));
    let o = h.call("k", "charge", r#"{"amount":501,"currency":"usd"}"#);
    assert_eq!(reason(&o), Some(Reason::RequireFailed));
    assert!(
        reply_body(&o).contains(r#"argument \"amount\" must be a number at most 500."#),
        "{}",
        reply_body(&o)
    );
    assert_eq!(
        o.report.calls[0].outcome,
        CallOutcome::Denied {
            reason: Reason::RequireFailed,
            rule: "tools.charge.require[0]".into(),
            counter: None
        }
    );
    assert_eq!(
        reason(&h.call("k", "charge", r#"{"currency":"usd"}"#)),
        Some(Reason::RequireFailed)
    );
    assert_eq!(
        reason(&h.call("k", "charge", r#"{"amount":"5","currency":"usd"}"#)),
        Some(Reason::RequireFailed)
    );
    assert_eq!(
        reason(&h.call("k", "charge", r#"{"amount":5,"currency":"gbp"}"#)),
        Some(Reason::RequireFailed)
    );
    let o = h.call(
        "k",
        "charge",
        r#"{"amount":5,"currency":"eur","note":"a REFUND"}"#,
    );
    assert_eq!(reason(&o), Some(Reason::DenyIfMatched));
    assert!(reply_body(&o).contains(r#"must not match the pattern"#));
    assert!(forwarded(&h.call("k", "read", r#"{"path":"/srv/a"}"#)));
    // The path a server opens is `/etc`, which `^/srv/` does not match.
    assert_eq!(
        reason(&h.call("k", "read", r#"{"path":"/srv/../etc"}"#)),
        Some(Reason::RequireFailed)
    );
    assert_eq!(
        reason(&h.call("k", "read", r#"{"path":"/etc"}"#)),
        Some(Reason::RequireFailed)
    );
    // A look-alike key cannot satisfy require, and a lenient server's reading triggers deny_if.
    assert_eq!(
        reason(&h.call("k", "read", r#"{"PATH":"/srv/a"}"#)),
        Some(Reason::RequireFailed)
    );
    assert_eq!(
        reason(&h.call("k", "read", r#"{"path":"/srv/a","Path":"/etc"}"#)),
        None
    );
    assert_eq!(
        status(&h.call("k", "read", r#"{"path":"/srv/a","Path":"/etc"}"#)),
        400
    );
    // Below the argument names, keys that differ only by case are the call's data: they
    // pass, and a condition reads every one of them.
    let mut h = Harness::new(
        r#"{"version":"1","default":"allow","tools":{"put":{"deny_if":[{"path":"args.opts.mode","op":"eq","value":"overwrite"}]},
        "spend":{"limits":[{"counter":"c","window":"day","max":1000,"increment_from":"args.o.n"}]}}}"#,
    );
    let headers = r#"{"headers":{"Content-Type":"a","content-type":"b"},"opts":{"mode":"keep"}}"#;
    assert!(forwarded(&h.call("k", "put", headers)));
    assert!(forwarded(&h.call("k", "other", headers)));
    let o = h.call("k", "put", r#"{"opts":{"mode":"keep","MODE":"overwrite"}}"#);
    assert_eq!(reason(&o), Some(Reason::DenyIfMatched));
    // A JSON text in a string is read as what it holds (the Python SDK parses it).
    let o = h.call("k", "put", r#"{"opts":"{\"mode\":\"overwrite\"}"}"#);
    assert_eq!(reason(&o), Some(Reason::DenyIfMatched));
    // An amount under two look-alike keys cannot be counted.
    let o = h.call("k", "spend", r#"{"o":{"n":1,"N":900}}"#);
    assert_eq!(reason(&o), Some(Reason::InvalidIncrement));
}

/// Strings a server reads as a literal through Unicode: Java's `equalsIgnoreCase` and
/// `toUpperCase` (dotless and dotted i), NFC and NFD normalisation and accent-insensitive
/// collations (`José`, `Jose\u0301`, `Jose`), full case folding (final sigma), Hangul
/// jamo, and digits of other scripts, which Python's `int()` and Java's `parseInt` read.
#[test]
fn conditions_see_the_unicode_spellings_a_server_reads_as_their_literal() {
    let mut h = Harness::new(
        r#"{"version":"1","default":"allow","tools":{
        "grant_role":{"deny_if":[{"path":"args.role","op":"eq","value":"admin"},
                                 {"path":"args.team","op":"in","value":["infra","security"]}]},
        "read_file":{"deny_if":[{"path":"args.path","op":"contains","value":"/internal/"},
                                {"path":"args.file_path","op":"regex","value":"^/etc"}]},
        "invite":{"require":[{"path":"args.role","op":"not_in","value":["admin"]}]},
        "send":{"deny_if":[{"path":"args.to","op":"eq","value":"José"},
                           {"path":"args.dir","op":"contains","value":"/Privé/"},
                           {"path":"args.k","op":"eq","value":"비밀"},
                           {"path":"args.g","op":"eq","value":"ΣΟΦΟΣ"}]},
        "cache_get":{"deny_if":[{"path":"args.key","op":"regex","value":"^secret"}]},
        "ssh":{"deny_if":[{"path":"args.port","op":"regex","value":"^(22|23)$"},
                          {"path":"args.p2","op":"in","value":["22","23"]},
                          {"path":"args.p3","op":"contains","value":"22"}]}}}"#,
    );
    let denied = [
        ("grant_role", r#"{"role":"adm\u0131n"}"#),
        ("grant_role", r#"{"role":"ADM\u0130N"}"#),
        ("grant_role", r#"{"team":"\u0131nfra"}"#),
        ("grant_role", r#"{"team":"SECUR\u0130TY"}"#),
        ("read_file", r#"{"path":"/srv/\u0131nternal/x"}"#),
        ("read_file", r#"{"path":"/srv/\u0130NTERNAL/x"}"#),
        ("read_file", r#"{"F\u0130LE_PATH":"/etc/passwd"}"#),
        ("read_file", r#"{"f\u0131le_path":"/etc/passwd"}"#),
        ("read_file", r#"{"fi\u0301le_path":"/etc/passwd"}"#),
        ("send", r#"{"to":"Jose\u0301"}"#),
        ("send", r#"{"to":"JOSE\u0301"}"#),
        ("send", r#"{"to":"Jose"}"#),
        ("send", r#"{"dir":"/home/Prive\u0301/x"}"#),
        ("send", r#"{"k":"\u1107\u1175\u1106\u1175\u11af"}"#),
        ("send", r#"{"g":"\u03c3\u03bf\u03c6\u03bf\u03c2"}"#),
        // NFKC (a server normalising its input) reads these as `secret-plans`.
        (
            "cache_get",
            r#"{"key":"\uff53\uff45\uff43\uff52\uff45\uff54-plans"}"#,
        ),
        ("cache_get", r#"{"key":"\u017fecret-plans"}"#),
        ("cache_get", r#"{"key":"s\u200becret-plans"}"#),
        ("cache_get", r#"{"key":"\u24e2ecret"}"#),
        ("ssh", r#"{"port":"\u0662\u0662"}"#),
        ("ssh", r#"{"port":"\u0968\u0968"}"#),
        ("ssh", r#"{"port":"0\u0662\u0662"}"#),
        ("ssh", r#"{"port":"\uff12\uff12"}"#),
        ("ssh", r#"{"p2":"\u0662\u0662"}"#),
        ("ssh", r#"{"p2":"\ud835\udfd0\ud835\udfd0"}"#),
        ("ssh", r#"{"p3":"\u0968\u0968"}"#),
    ];
    for (tool, args) in denied {
        assert_eq!(
            reason(&h.call("k", tool, args)),
            Some(Reason::DenyIfMatched),
            "{tool} {args}"
        );
    }
    let o = h.call("k", "invite", r#"{"role":"adm\u0131n"}"#);
    assert_eq!(reason(&o), Some(Reason::RequireFailed));
    // Other letters, and digits of another value, still pass.
    for (tool, args) in [
        ("grant_role", r#"{"role":"\u0430dmin2"}"#),
        ("send", r#"{"to":"Josa\u0301"}"#),
        ("send", r#"{"k":"\ube44"}"#),
        ("cache_get", r#"{"key":"my-secret"}"#),
        ("cache_get", r#"{"key":"\u00fcbersecret"}"#),
        ("ssh", r#"{"port":"\u0662\u0663\u0662"}"#),
        ("invite", r#"{"role":"editor"}"#),
    ] {
        assert!(forwarded(&h.call("k", tool, args)), "{tool} {args}");
    }
}

/// Numbers as servers binding them to integers read them: Go's mcp-go `GetInt` does
/// `int(v)` on a float64 (0.5 is 0, anything from 2^63 up the most negative int64) and
/// Jackson's `ACCEPT_FLOAT_AS_INT` cuts fractions; and number strings padded with what
/// Python's `Decimal` (U+001C-U+001F) or JavaScript's `Number()` (a BOM) trims.
#[test]
fn conditions_see_numbers_as_integer_bindings_and_lax_parsers_read_them() {
    let mut h = Harness::new(
        r#"{"version":"1","default":"allow","tools":{
        "scale":{"deny_if":[{"path":"args.replicas","op":"lte","value":0}]},
        "scale2":{"deny_if":[{"path":"args.replicas","op":"eq","value":0}]},
        "scale3":{"require":[{"path":"args.replicas","op":"gt","value":0}]},
        "scale4":{"require":[{"path":"args.replicas","op":"not_in","value":[0]}]},
        "refund":{"require":[{"path":"args.delta","op":"lt","value":0}]},
        "ssh":{"deny_if":[{"path":"args.port","op":"regex","value":"^(22|23)$"}]},
        "ssh2":{"deny_if":[{"path":"args.port","op":"in","value":["22","23"]}]},
        "ssh3":{"deny_if":[{"path":"args.port","op":"in","value":[22,23]}]},
        "ssh4":{"deny_if":[{"path":"args.port","op":"contains","value":"22"}]},
        "list":{"require":[{"path":"args.offset","op":"gte","value":0}]},
        "list2":{"deny_if":[{"path":"args.offset","op":"lt","value":0}]},
        "neg":{"deny_if":[{"path":"args.n","op":"regex","value":"^-"}]}}}"#,
    );
    let (deny, pass) = (false, true);
    for (tool, args, forwards) in [
        ("scale", r#"{"replicas":0.5}"#, deny),
        ("scale2", r#"{"replicas":0.5}"#, deny),
        ("scale3", r#"{"replicas":0.5}"#, deny),
        ("scale4", r#"{"replicas":0.9}"#, deny),
        ("refund", r#"{"delta":-0.5}"#, deny),
        ("ssh", r#"{"port":22.5}"#, deny),
        ("ssh2", r#"{"port":22.5}"#, deny),
        ("ssh3", r#"{"port":22.9}"#, deny),
        ("list", r#"{"offset":1e19}"#, deny),
        ("list2", r#"{"offset":9.3e18}"#, deny),
        ("list2", r#"{"offset":1e300}"#, deny),
        ("ssh", r#"{"port":"\ufeff22"}"#, deny),
        ("ssh", r#"{"port":"\u001c22"}"#, deny),
        ("ssh", r#"{"port":"22\u001f"}"#, deny),
        ("ssh", r#"{"port":"\ufeff0x16"}"#, deny),
        ("ssh4", r#"{"port":"\ufeff0x16"}"#, deny),
        ("ssh4", r#"{"port":"\u001e2_2"}"#, deny),
        ("scale", r#"{"replicas":1.5}"#, pass),
        ("scale3", r#"{"replicas":2}"#, pass),
        ("ssh3", r#"{"port":24.5}"#, pass),
        ("list", r#"{"offset":9e18}"#, pass),
        ("list2", r#"{"offset":12.5}"#, pass),
        // A plain integer from 2^63 up is the most negative int64 to Go.
        ("neg", r#"{"n":9223372036854775808}"#, deny),
        ("neg", r#"{"n":[1,9223372036854775808]}"#, deny),
        ("neg", r#"{"n":922337203685477580}"#, pass),
    ] {
        let o = h.call("k", tool, args);
        assert_eq!(forwarded(&o), forwards, "{tool} {args}");
    }
}

#[test]
fn all_tools_limits_and_shared_counters() {
    let mut h = Harness::new(
        r#"{"version":"1","default":"allow",
        "all_tools":{"limits":[{"counter":"calls","window":"minute","max":5,"scope":"grant"}]},
        "tools":{"a":{"limits":[{"counter":"writes","window":"hour","max":3}]},"b":{"limits":[{"counter":"writes","window":"hour","max":3}]}}}"#,
    );
    assert!(forwarded(&h.call("k", "a", "{}")));
    assert!(forwarded(&h.call("k", "b", "{}")));
    assert!(forwarded(&h.call("k", "a", "{}")));
    let o = h.call("k", "b", "{}");
    assert_eq!(
        reason(&o),
        Some(Reason::RateLimited),
        "a and b share writes"
    );
    assert_eq!(
        o.report.calls[0].outcome,
        CallOutcome::Denied {
            reason: Reason::RateLimited,
            rule: "tools.b.limits[0]".into(),
            counter: Some("writes".into())
        }
    );
    // The denied call consumed nothing from "calls": two more unlisted calls fit under 5.
    assert!(forwarded(&h.call("k", "c", "{}")));
    assert!(forwarded(&h.call("k", "c", "{}")));
    let o = h.call("k", "c", "{}");
    assert_eq!(reason(&o), Some(Reason::RateLimited));
    assert!(reply_body(&o).contains("all_tools.limits[0]"));
}

#[test]
fn windows_reset_on_the_calendar() {
    for (window, secs) in [
        ("second", 1u64),
        ("minute", 60),
        ("hour", 3600),
        ("day", 86_400),
    ] {
        let mut h = Harness::new(&format!(
            r#"{{"version":"1","default":"allow","tools":{{"t":{{"limits":[{{"counter":"c","window":"{window}","max":2}}]}}}}}}"#
        ));
        // Start of a day (T0 is 10:31:00): align to the window start.
        h.clock.set_nanos((T0 - T0 % secs) * 1_000_000_000);
        assert!(forwarded(&h.call("k", "t", "{}")));
        assert!(forwarded(&h.call("k", "t", "{}")));
        let o = h.call("k", "t", "{}");
        assert_eq!(reason(&o), Some(Reason::RateLimited), "{window}");
        assert_eq!(header(&o, "retry-after"), Some(secs.to_string()));
        h.clock.advance_nanos(secs * 1_000_000_000 - 1);
        assert_eq!(
            reason(&h.call("k", "t", "{}")),
            Some(Reason::RateLimited),
            "{window} still"
        );
        h.clock.advance_nanos(1);
        assert!(forwarded(&h.call("k", "t", "{}")), "{window} reset");
    }
}

/// Two workers at a window's end: one whose clock has passed the boundary gives grant A's
/// slot to grant B in the new window; one whose clock has not must not then count A afresh
/// in the old window (A's own slot is gone), but in the new one, where it has used none.
#[test]
fn a_worker_behind_a_window_boundary_counts_in_the_window_another_has_opened() {
    let mut h = Harness::new(
        r#"{"policy":{"version":"1","default":"allow","tools":{
        "t":{"limits":[{"counter":"c","window":"minute","max":1}]}}},"counter_slots":1}"#,
    );
    let body = call_body(1, "t", "{}");
    let at = |h: &mut Harness, nanos: u64| h.clock.set_nanos(nanos);
    at(&mut h, (T0 + 59) * 1_000_000_000);
    assert!(forwarded(&h.post("Bearer A", &body)));
    assert!(
        !forwarded(&h.post("Bearer A", &body)),
        "A used up the window"
    );
    at(&mut h, (T0 + 60) * 1_000_000_000);
    assert!(forwarded(&h.post("Bearer B", &body)));
    at(&mut h, (T0 + 59) * 1_000_000_000 + 999_999_000);
    let mut admitted = usize::from(forwarded(&h.post("Bearer A", &body)));
    at(&mut h, (T0 + 60) * 1_000_000_000);
    admitted += usize::from(forwarded(&h.post("Bearer A", &body)));
    assert_eq!(admitted, 1, "A's second window admits one call");
}

#[test]
fn scopes() {
    let mut h = Harness::new(
        r#"{"version":"1","default":"allow","tools":{
        "g":{"limits":[{"counter":"cg","window":"minute","max":1,"scope":"global"}]},
        "s":{"limits":[{"counter":"cs","window":"minute","max":1,"scope":"session"}]}}}"#,
    );
    assert!(forwarded(&h.call("k1", "g", "{}")));
    assert_eq!(
        reason(&h.call("k2", "g", "{}")),
        Some(Reason::RateLimited),
        "global is shared"
    );

    let sess = |h: &mut Harness, grant: &str, session: &str| {
        h.request(
            &[
                ("content-type", "application/json"),
                ("authorization", grant),
                ("mcp-session-id", session),
            ],
            &call_body(1, "s", "{}"),
        )
    };
    assert!(forwarded(&sess(&mut h, "k1", "S1")));
    assert_eq!(reason(&sess(&mut h, "k1", "S1")), Some(Reason::RateLimited));
    assert!(
        forwarded(&sess(&mut h, "k1", "S2")),
        "a new session of the grant has its own count"
    );
    // The same session id under another grant is another session.
    assert!(forwarded(&sess(&mut h, "k2", "S1")));
    assert_eq!(reason(&sess(&mut h, "k2", "S1")), Some(Reason::RateLimited));

    // The 2024-11-05 transport: its server finds the session by the query (the Python
    // SDK reads it with UUID(hex=...)), whatever a session header says.
    let legacy = |h: &mut Harness, query: &str, header: Option<&str>| {
        let path = format!("/messages/?{query}");
        let mut headers = vec![
            (":method", "POST"),
            (":path", path.as_str()),
            ("content-type", "application/json"),
            ("authorization", "k3"),
        ];
        headers.extend(header.map(|v| ("mcp-session-id", v)));
        h.request(&headers, &call_body(1, "s", "{}"))
    };
    let id = "session_id=0123456789abcdef0123456789abcdef";
    assert!(forwarded(&legacy(&mut h, id, None)));
    for query in [
        id,
        "session_id=01234567-89AB-CDEF-0123-456789ABCDEF",
        "session_id=%7Burn:uuid:0123456789abcdef0123456789abcdef%7D",
        "sessionId=0123456789abcdef0123456789abcdef",
    ] {
        let o = legacy(&mut h, query, None);
        assert_eq!(reason(&o), Some(Reason::RateLimited), "{query}");
    }
    // A session header beside it would be another count for the same server session.
    for header in ["a", "b"] {
        let o = legacy(&mut h, id, Some(header));
        assert_eq!(status(&o), 400, "{header}");
    }
    let o = legacy(
        &mut h,
        &format!("{id}&sessionId=fedcba9876543210fedcba9876543210"),
        None,
    );
    assert_eq!(status(&o), 400);
    assert!(forwarded(&legacy(
        &mut h,
        "session_id=fedcba9876543210fedcba9876543210",
        None
    )));
}

#[test]
fn grant_sources() {
    let cfg = |sources: &str| {
        format!(
            r#"{{"policy":{{"version":"1","default":"allow","tools":{{"t":{{"limits":[{{"counter":"c","window":"minute","max":1}}]}}}}}},"grant_sources":{sources}}}"#
        )
    };
    // Default: authorization, else x-api-key, else the address (without port).
    let mut h = Harness::new(&cfg(
        r#"[{"header":"authorization"},{"header":"x-api-key"},{"downstream_address":true}]"#,
    ));
    let body = call_body(1, "t", "{}");
    assert!(forwarded(&h.request(
        &[("content-type", "application/json"), ("x-api-key", "K")],
        &body
    )));
    assert_eq!(
        reason(&h.request(
            &[("content-type", "application/json"), ("x-api-key", "K")],
            &body
        )),
        Some(Reason::RateLimited)
    );
    assert!(
        forwarded(&h.request(&[("content-type", "application/json")], &body)),
        "by address"
    );
    assert_eq!(
        reason(&h.request(&[("content-type", "application/json")], &body)),
        Some(Reason::RateLimited)
    );
    // A header cannot pose as the address grant.
    assert!(forwarded(&h.request(
        &[
            ("content-type", "application/json"),
            ("authorization", "10.0.0.9")
        ],
        &body
    )));
    // One bearer token spelled several ways is one grant: the scheme's case, and words
    // after the token, which the TypeScript SDK's bearer check ignores.
    let mut one = Harness::new(&cfg(r#"[{"header":"authorization"}]"#));
    let grant = |v: &'static str| [("content-type", "application/json"), ("authorization", v)];
    assert!(forwarded(&one.request(&grant("Bearer tok"), &body)));
    for spelling in [
        "bearer tok",
        "BEARER  tok",
        "Bearer tok x",
        "Bearer\ttok",
        "tok",
        // Separators servers split or trim on that are not ASCII spaces: U+00A0 (Node's
        // `\s`), U+3000 (Go's `strings.Fields`), vertical tab (Python's `str.split`).
        "Bearer\u{a0}tok",
        "Bearer tok\u{a0}",
        "\u{3000}Bearer tok",
        "Bearer tok\x0b\x0b",
        "\u{85}tok",
        // Base64 padding: PyJWT verifies a JWT with `=` after its signature as the same.
        "Bearer tok=",
        "Bearer tok==",
    ] {
        let o = one.request(&grant(spelling), &body);
        assert_eq!(reason(&o), Some(Reason::RateLimited), "{spelling:?}");
    }
    assert!(forwarded(&one.request(&grant("Bearer tok2"), &body)));
    // Base64 text that `atob` (and so JavaScript's `jose`) decodes to the same bytes: the
    // bits a last character carries beyond the bytes, and either alphabet.
    assert!(forwarded(
        &one.request(&grant("Bearer eyJh.eyJi.c2lnQQ"), &body)
    ));
    for spelling in [
        "Bearer eyJh.eyJi.c2lnQR",
        "Bearer eyJh.eyJi.c2lnQZ",
        "Bearer eyJh.eyJi.c2lnQQ==",
    ] {
        let o = one.request(&grant(spelling), &body);
        assert_eq!(reason(&o), Some(Reason::RateLimited), "{spelling:?}");
    }
    // A JWE in compact form (five parts, the key part empty with `dir`) is read the same.
    assert!(forwarded(
        &one.request(&grant("Bearer eyJh..aXZpdg.Y2lwaGVy.dGFnQQ"), &body)
    ));
    for spelling in [
        "Bearer eyJh..aXZpdh.Y2lwaGVy.dGFnQR",
        "Bearer eyJh..aXZpdg.Y2lwaGVy.dGFnQQ==",
    ] {
        let o = one.request(&grant(spelling), &body);
        assert_eq!(reason(&o), Some(Reason::RateLimited), "{spelling:?}");
    }
    assert!(forwarded(
        &one.request(&grant("Bearer eyJh.eyJi.a+/b"), &body)
    ));
    let o = one.request(&grant("Bearer eyJh.eyJi.a-_b"), &body);
    assert_eq!(reason(&o), Some(Reason::RateLimited));
    // Tokens that are no JWT keep their characters (JWTs with others are refused below).
    assert!(forwarded(&one.request(&grant("Bearer tok~1"), &body)));
    assert!(forwarded(&one.request(&grant("Bearer ab.cd.e~f"), &body)));
    // A Basic credential as Go's `BasicAuth` and Python's `b64decode` read it: the spare
    // bits of its last character, and its words joined (Python skips the spaces). Other
    // characters, which Python skips too, are refused.
    assert!(forwarded(&one.request(&grant("Basic dXNlcjpwYXM="), &body)));
    for spelling in [
        "Basic dXNlcjpwYXN=",
        "Basic dXNlcjpwYXO",
        "basic dXNlcjpwYXP==",
    ] {
        let o = one.request(&grant(spelling), &body);
        assert_eq!(reason(&o), Some(Reason::RateLimited), "{spelling:?}");
    }
    for spelling in [
        "Basic dXNl.cjpwYXM=",
        "Basic dXNl*cjpwYXM=",
        "Basic dXNl-cjpwYXM=",
        "Basic dXNl=cjpwYXM=",
        // Python joins the words, Node takes the first: refused.
        "Basic dXNl cjpwYXM=",
        "Basic dXNlcjpwYXM= junk",
        // Python's JWT verifiers (PyJWT before 2.11, Authlib, python-jose) decode with
        // `urlsafe_b64decode`, which skips characters outside base64 and stops at padding:
        // each of these would be the first token's signature to them.
        "Bearer eyJh.eyJi.c2lnQQ=junk",
        "Bearer eyJh.eyJi.c2lnQQ=AAAA",
        "Bearer eyJh.eyJi.c2l~~nQQ",
        "Bearer eyJh.eyJi.c2l*nQQ==",
        "Bearer ewoi.eyJi.c2l!nQQ",
        "Bearer eyJh=.eyJi.c2lnQQ",
        // The same for a JWE (jwcrypto, Authlib and python-jose decrypt with it too).
        "Bearer eyJh..aXZpdg.Y2lw~~~~aGVy.dGFnQQ",
        "Bearer eyJh..aXZpdg==.Y2lwaGVy.dGFnQQ",
        // A lone last digit holds no byte: Node's `Buffer` drops it (jose on Node).
        "Bearer eyJh.eyJi.c2lnQQAAx",
        "Bearer eyJh..aXZpdg.Y2lwaGVyx.dGFnQQ",
    ] {
        let o = one.request(&grant(spelling), &body);
        assert_eq!(status(&o), 400, "{spelling:?}");
    }
    assert!(forwarded(&one.request(&grant("Basic dXNyOnB3"), &body)));
    // A lone last digit, which Node drops.
    let o = one.request(&grant("Basic dXNyOnB3Z"), &body);
    assert_eq!(reason(&o), Some(Reason::RateLimited));
    assert!(forwarded(&one.request(&grant("Basic dXNlcjpwYXQ="), &body)));
    // Other tokens keep every bit: people choose keys like `team-1` and `team-2`.
    assert!(forwarded(&one.request(&grant("Bearer team-1"), &body)));
    assert!(forwarded(&one.request(&grant("Bearer team-2"), &body)));
    // Words joined by a tab: the TypeScript SDK passes `tok\tx` on and `atob` drops the
    // tab, so every split of one token would be a grant of its own. Refused.
    for spelling in [
        "Bearer eyJh.eyJi.c2l\tnQQ",
        "Bearer tok\tx",
        "Bearer tok \t x",
    ] {
        let o = one.request(&grant(spelling), &body);
        assert!(!forwarded(&o), "{spelling:?}");
        assert_eq!(status(&o), 400, "{spelling:?}");
    }
    // An empty value is no credential at all, not a grant of its own.
    assert_eq!(
        reason(&one.request(&grant(""), &body)),
        Some(Reason::NoGrant)
    );
    assert!(
        forwarded(&one.request(&grant("Bearer TOK"), &body)),
        "tokens keep their case"
    );
    // Grant headers are one namespace: a token sent as X-Api-Key is the bearer token's
    // grant, and the same credential in both headers is one grant.
    let api_key = |v: &'static str| [("content-type", "application/json"), ("x-api-key", v)];
    assert!(forwarded(&h.request(&api_key("tok3"), &body)));
    assert_eq!(
        reason(&h.request(&grant("Bearer tok3"), &body)),
        Some(Reason::RateLimited)
    );
    let both = [
        ("content-type", "application/json"),
        ("authorization", "Bearer tok4"),
        ("x-api-key", " tok4\u{a0}"),
    ];
    assert!(forwarded(&h.request(&both, &body)));
    assert_eq!(
        reason(&h.request(&api_key("tok4"), &body)),
        Some(Reason::RateLimited)
    );
    // Only a header source: no header means no grant.
    let mut only = Harness::new(&cfg(r#"[{"header":"x-user"}]"#));
    let o = only.request(&[("content-type", "application/json")], &body);
    assert_eq!(reason(&o), Some(Reason::NoGrant));
    assert!(forwarded(&only.request(
        &[("content-type", "application/json"), ("x-user", "u")],
        &body
    )));
    // Fingerprints are reported, never credentials.
    let o = only.request(
        &[("content-type", "application/json"), ("x-user", "u")],
        &body,
    );
    let fp = toolgate_engine::hash::hex16(o.report.grant.unwrap());
    assert_eq!(fp.len(), 16);
    assert!(!format!("{:?}", o.report).contains("\"u\""));
}

#[test]
fn increment_from() {
    let mut h = Harness::new(
        r#"{"version":"1","default":"allow","tools":{"spend":{"limits":[{"counter":"cents","window":"day","max":1000,"increment_from":"args.amount"}]}}}"#,
    );
    assert!(forwarded(&h.call("k", "spend", r#"{"amount":600}"#)));
    assert!(forwarded(&h.call("k", "spend", r#"{"amount":399.5}"#)));
    let o = h.call("k", "spend", r#"{"amount":1}"#);
    assert_eq!(
        reason(&o),
        Some(Reason::RateLimited),
        "600 + 400 (rounded up) is the max"
    );
    assert!(reply_body(&o).contains("1000 units per day"));
    // A zero amount adds nothing, but only while there is room for one unit: a server may
    // read 0 as "the default" or "all".
    for zero in [r#"{"amount":0}"#, r#"{"amount":-0}"#, r#"{"amount":0e5}"#] {
        assert_eq!(
            reason(&h.call("k", "spend", zero)),
            Some(Reason::RateLimited),
            "{zero}"
        );
    }
    assert!(forwarded(&h.call("k4", "spend", r#"{"amount":0}"#)));
    assert!(forwarded(&h.call("k4", "spend", r#"{"amount":1000}"#)));
    for bad in [
        r#"{}"#,
        r#"{"amount":-1}"#,
        r#"{"amount":"5"}"#,
        r#"{"amount":null}"#,
    ] {
        assert_eq!(
            reason(&h.call("k2", "spend", bad)),
            Some(Reason::InvalidIncrement),
            "{bad}"
        );
    }
    // A look-alike key counts the larger amount.
    assert_eq!(
        reason(&h.call("k3", "spend", r#"{"Amount":5000}"#)),
        Some(Reason::RateLimited)
    );
}

#[test]
fn shadow_mode_forwards_and_reports() {
    let cfg = format!(r#"{{"policy":{SEED},"mode":"shadow"}}"#);
    let mut h = Harness::new(&cfg);
    let o = h.call("k", "cache_delete", "{}");
    assert!(forwarded(&o));
    assert_eq!(o.report.summary(), "shadow_denied:not_allowed:cache_delete");
    for _ in 0..30 {
        assert!(forwarded(&h.call("k", "cache_cas", "{}")));
    }
    let o = h.call("k", "cache_cas", "{}");
    assert!(forwarded(&o));
    assert_eq!(o.report.summary(), "shadow_denied:rate_limited:cache_cas");
    let o = h.post("k", "{not json");
    assert!(forwarded(&o));
    assert_eq!(o.report.summary(), "shadow_rejected:parse_error");
}

#[test]
fn error_denial_style() {
    let cfg = format!(r#"{{"policy":{SEED},"denial_style":"error"}}"#);
    let mut h = Harness::new(&cfg);
    let o = h.post(
        "k",
        &call_body(1, "x", "{}").replace("\"id\":1", "\"id\":\"abc\""),
    );
    assert_eq!(
        reply_body(&o),
        r#"{"jsonrpc":"2.0","id":"abc","error":{"code":-32003,"message":"Toolgate denied tool \"x\": it is not allowed by policy.","data":{"reason":"not_allowed","rule":"default"}}}"#
    );
}

#[test]
fn hot_reload_keeps_counters() {
    let mut h = Harness::new(SEED);
    for _ in 0..30 {
        assert!(forwarded(&h.call("k", "cache_cas", "{}")));
    }
    h.reload(&SEED.replace("\"default\":\"deny\"", "\"default\":\"allow\""));
    assert_eq!(
        reason(&h.call("k", "cache_cas", "{}")),
        Some(Reason::RateLimited)
    );
    assert!(
        forwarded(&h.call("k", "cache_get", "{}")),
        "the new policy applies"
    );
}

#[test]
fn batches_are_all_or_nothing() {
    let mut h = Harness::new(&SEED.replace("\"max\":30", "\"max\":2"));
    let batch = format!(
        "[{},{},{}]",
        call_body(1, "cache_cas", "{}"),
        r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#,
        call_body(2, "cache_delete", "{}")
    );
    let o = h.post("k", &batch);
    let body = reply_body(&o);
    assert!(body.starts_with('[') && body.ends_with(']'));
    assert!(body.contains(r#""id":1,"result""#) && body.contains("batch_refused"));
    assert!(body.contains(r#""id":2,"result""#) && body.contains("not_allowed"));
    assert_eq!(reason(&o), Some(Reason::NotAllowed));
    // Every request of a refused batch is answered (a client would wait on the others for
    // ever), its notifications not; a batch whose only call is a notification is answered
    // as an array too.
    let mixed = format!(
        "[{},{},{}]",
        r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"cache_delete","arguments":{}}}"#,
        r#"{"jsonrpc":"2.0","id":5,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":"six","method":"tools/list"}"#,
    );
    let ids_and_reasons = |body: &str| -> Vec<(String, String)> {
        let v = toolgate_engine::json::parse_strict(body.as_bytes(), 16).unwrap();
        v.elements()
            .map(|a| {
                let detail = a
                    .get("error")
                    .and_then(|e| e.get("data"))
                    .or_else(|| {
                        a.get("result")
                            .and_then(|r| r.get("_meta"))
                            .and_then(|m| m.get("toolgate/decision"))
                    })
                    .unwrap();
                let reason = detail.get("reason").unwrap().as_str().unwrap().decode();
                (a.get("id").unwrap().raw().to_string(), reason.into_owned())
            })
            .collect()
    };
    let body = reply_body(&h.post("k", &mixed));
    assert_eq!(
        ids_and_reasons(&body),
        [
            ("5".to_string(), "batch_refused".to_string()),
            ("\"six\"".into(), "batch_refused".into())
        ],
        "{body}"
    );
    let with_call = format!(
        "[{},{}]",
        call_body(7, "cache_delete", "{}"),
        r#"{"jsonrpc":"2.0","id":8,"method":"ping"}"#
    );
    let body = reply_body(&h.post("k", &with_call));
    assert_eq!(
        ids_and_reasons(&body),
        [
            ("7".to_string(), "not_allowed".to_string()),
            ("8".into(), "batch_refused".into())
        ],
        "{body}"
    );
    // Nothing was counted: two single calls still fit.
    assert!(forwarded(&h.call("k", "cache_cas", "{}")));
    let two = format!(
        "[{},{}]",
        call_body(3, "cache_cas", "{}"),
        call_body(4, "cache_cas", "{}")
    );
    let o = h.post("k", &two);
    assert_eq!(
        reason(&o),
        Some(Reason::RateLimited),
        "the second element is over"
    );
    assert!(
        forwarded(&h.call("k", "cache_cas", "{}")),
        "the refused batch consumed nothing"
    );
    let o = h.post("k", &format!("[{}]", call_body(5, "cache_cas", "{}")));
    assert_eq!(reason(&o), Some(Reason::RateLimited));
    // A batch of allowed calls and other messages goes through.
    let mut h = Harness::new(SEED);
    let ok = format!(
        "[{},{}]",
        call_body(1, "cache_cas", "{}"),
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#
    );
    assert!(forwarded(&h.post("k", &ok)));
}

#[test]
fn notifications_are_judged() {
    let mut h = Harness::new(SEED);
    let o = h.post("k", r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"cache_delete","arguments":{}}}"#);
    assert_eq!(reason(&o), Some(Reason::NotAllowed));
    assert!(reply_body(&o).starts_with(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32003"#));
}

#[test]
fn refusals_before_judging() {
    let mut h = Harness::new(SEED);
    let body = call_body(1, "cache_cas", "{}");
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, u16, Rejection);
    let cases: Vec<Case<'_>> = vec![
        (
            vec![("content-type", "text/plain")],
            body.as_str(),
            415,
            Rejection::UnsupportedMediaType,
        ),
        (vec![], body.as_str(), 415, Rejection::UnsupportedMediaType),
        (
            vec![
                ("content-type", "application/json"),
                ("content-type", "application/json"),
            ],
            body.as_str(),
            400,
            Rejection::InvalidRequest,
        ),
        (
            vec![
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            body.as_str(),
            415,
            Rejection::UnsupportedMediaType,
        ),
        (
            vec![("content-type", "application/json; charset=utf-16")],
            body.as_str(),
            415,
            Rejection::UnsupportedMediaType,
        ),
        (
            vec![
                ("content-type", "application/json"),
                ("content-length", "2000000"),
            ],
            body.as_str(),
            413,
            Rejection::BodyTooLarge,
        ),
        (
            vec![
                ("content-type", "application/json"),
                ("authorization", "a"),
                ("authorization", "b"),
            ],
            body.as_str(),
            400,
            Rejection::InvalidRequest,
        ),
        (
            vec![
                ("content-type", "application/json"),
                ("authorization", "Bearer a"),
                ("x-api-key", "b"),
            ],
            body.as_str(),
            400,
            Rejection::InvalidRequest,
        ),
        (
            vec![
                ("content-type", "application/json"),
                ("mcp-session-id", "a"),
                ("mcp-session-id", "b"),
            ],
            body.as_str(),
            400,
            Rejection::InvalidRequest,
        ),
        (
            vec![("content-type", "application/json")],
            "",
            400,
            Rejection::ParseError,
        ),
        (
            vec![("content-type", "application/json")],
            "{\"jsonrpc\":\"2.0\"",
            400,
            Rejection::ParseError,
        ),
        (
            vec![("content-type", "application/json")],
            "\u{feff}{}",
            400,
            Rejection::ParseError,
        ),
        (
            vec![("content-type", "application/json")],
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"} {"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x"}}"#,
            400,
            Rejection::ParseError,
        ),
        (
            vec![("content-type", "application/json")],
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"x"}}"#,
            400,
            Rejection::InvalidRequest,
        ),
        (
            vec![("content-type", "application/json")],
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cache_cas","name":"x"}}"#,
            400,
            Rejection::InvalidRequest,
        ),
        (
            vec![("content-type", "application/json")],
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cache_cas","Name":"x"}}"#,
            400,
            Rejection::InvalidRequest,
        ),
        (
            vec![("content-type", "application/json")],
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"x"}}"#,
            400,
            Rejection::InvalidParams,
        ),
        (
            vec![("content-type", "application/json")],
            r#"{"jsonrpc":"2.0","id":1,"Method":"tools/call","params":{"name":"x"}}"#,
            400,
            Rejection::InvalidRequest,
        ),
        (
            vec![("content-type", "application/json")],
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["x",{}]}"#,
            400,
            Rejection::InvalidParams,
        ),
        (
            vec![("content-type", "application/json")],
            "[]",
            400,
            Rejection::InvalidRequest,
        ),
    ];
    for (headers, body, code, kind) in cases {
        let o = h.request(&headers, body);
        assert_eq!(status(&o), code, "{headers:?} {body}");
        assert_eq!(
            o.report.rejection.as_ref().map(|r| r.0),
            Some(kind),
            "{headers:?} {body}"
        );
        // Invalid params answer the id they came with; other refusals could not trust it.
        let id = if kind == Rejection::InvalidParams {
            "1"
        } else {
            "null"
        };
        let b = reply_body(&o);
        assert!(
            b.starts_with(&format!(
                r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":-32"#
            )),
            "{b}"
        );
    }
    // In a batch no single id is answered.
    let o = h.request(
        &[("content-type", "application/json")],
        r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"x"}},{"jsonrpc":"2.0","id":2,"method":"ping"}]"#,
    );
    assert_eq!(status(&o), 400);
    assert!(reply_body(&o).starts_with(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32602"#));
    // A string id is echoed as a string.
    let o = h.request(
        &[("content-type", "application/json")],
        r#"{"jsonrpc":"2.0","id":"a\"b","method":"tools/call","params":{"name":7}}"#,
    );
    assert!(reply_body(&o).starts_with(r#"{"jsonrpc":"2.0","id":"a\"b","error":{"code":-32602"#));
    // Depth beyond the bound.
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
    assert_eq!(status(&h.post("k", &deep)), 400);
    // Invalid UTF-8 is a parse error.
    let o = h.request(&[("content-type", "application/json")], "\"\u{0}\"");
    assert_eq!(status(&o), 400);
}

#[test]
fn store_failure_fails_closed() {
    let mut h = Harness::new(SEED);
    assert!(forwarded(&h.call("k", "cache_cas", "{}")));
    h.store.set_failing(true);
    let o = h.call("k", "cache_cas", "{}");
    assert_eq!(reason(&o), Some(Reason::StoreError));
    assert!(o.report.store_error.is_some());
    // Calls that need no counter are unaffected.
    let mut h = Harness::new(r#"{"version":"1","default":"allow"}"#);
    h.store.set_failing(true);
    assert!(forwarded(&h.call("k", "anything", "{}")));
}

#[test]
fn passive_methods_pass_untouched() {
    let h = Harness::new(SEED);
    let attrs = NoAttributes;
    // A GET's answer may be the 2024-11-05 transport's stream: watched, not inspected.
    assert_eq!(
        h.engine.inspect_head(b"GET", &[], false, &attrs),
        toolgate_engine::Head::Watch
    );
    for m in ["HEAD", "DELETE", "OPTIONS"] {
        assert_eq!(
            h.engine.inspect_head(m.as_bytes(), &[], false, &attrs),
            toolgate_engine::Head::Pass
        );
    }
    assert!(matches!(
        h.engine.inspect_head(
            b"PUT",
            &[(b"content-type", b"application/json")],
            true,
            &attrs
        ),
        toolgate_engine::Head::Inspect(_)
    ));
    assert!(matches!(
        h.engine.inspect_head(b"GET", &[], true, &attrs),
        toolgate_engine::Head::Done(_)
    ));
}

#[test]
fn bodyless_requests_naming_a_call_in_headers_are_refused() {
    let h = Harness::new(SEED);
    let attrs = NoAttributes;
    let heads: [&[(&[u8], &[u8])]; 4] = [
        &[
            (b"mcp-method", b"tools/call"),
            (b"mcp-name", b"cache_delete"),
        ],
        &[(b"Mcp-Name", b"cache_delete")],
        &[(b"x-request-id", b"r-7"), (b"MCP-METHOD", b"tools/call")],
        &[(b"Mcp-Param-Key", b"secret")],
    ];
    for m in ["GET", "HEAD", "DELETE", "OPTIONS"] {
        for head in heads {
            let toolgate_engine::Head::Done(outcome) =
                h.engine.inspect_head(m.as_bytes(), head, false, &attrs)
            else {
                panic!("{m} {head:?} was not refused");
            };
            assert_eq!(status(&outcome), 400, "{m}");
            assert!(
                reply_body(&outcome)
                    .starts_with(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32020"#),
                "{m} {head:?}"
            );
        }
    }
    let toolgate_engine::Head::Done(outcome) =
        h.engine.inspect_head(b"GET", heads[2], false, &attrs)
    else {
        panic!("not refused");
    };
    assert_eq!(outcome.report.request_id.as_deref(), Some("r-7"));
    // CGI and WSGI servers read `Mcp_Name` as `Mcp-Name`.
    for head in [
        &[(b"mcp_name".as_slice(), b"cache_delete".as_slice())][..],
        &[(b"Mcp_Method", b"tools/call")],
        &[(b"mcp_param_key", b"secret")],
        &[(b"mcp-param_key", b"secret")],
    ] {
        assert!(
            matches!(
                h.engine.inspect_head(b"GET", head, false, &attrs),
                toolgate_engine::Head::Done(_)
            ),
            "{head:?}"
        );
    }
    // A session header alone still opens the stream untouched.
    assert_eq!(
        h.engine
            .inspect_head(b"GET", &[(b"mcp-session-id", b"S1")], false, &attrs),
        toolgate_engine::Head::Watch
    );
}

#[test]
fn queries_carrying_a_json_rpc_member_are_refused_with_or_without_a_body() {
    let h = Harness::new(SEED);
    let attrs = NoAttributes;
    let refused = |method: &[u8], path: &[u8], has_body: bool| {
        let head: [(&[u8], &[u8]); 2] = [(b":path", path), (b"content-type", b"application/json")];
        match h.engine.inspect_head(method, &head, has_body, &attrs) {
            toolgate_engine::Head::Done(outcome) => {
                assert_eq!(status(&outcome), 400);
                assert!(reply_body(&outcome)
                    .starts_with(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600"#));
                true
            }
            _ => false,
        }
    };
    let get_call: &[u8] = b"/mcp?jsonrpc=2.0&method=tools%2Fcall&params=%7B%7D&id=1";
    assert!(refused(b"GET", get_call, false));
    assert!(refused(b"DELETE", b"/mcp?%4Dethod=x", false));
    assert!(refused(b"POST", b"/mcp?params[name]=cache_delete", true));
    // Form decoders read `+` as a space, which name folding drops.
    assert!(refused(b"POST", b"/mcp?na+me=cache_delete", true));
    assert!(refused(b"POST", b"/mcp;name=cache_delete", true));
    // The 2024-11-05 transport's session query, and queries naming nothing, are untouched.
    assert!(!refused(b"GET", b"/sse?sessionId=abc", false));
    assert!(!refused(b"POST", b"/messages?session_id=abc", true));
    assert!(!refused(b"POST", b"/mcp?tenant=a", true));
}

#[test]
fn upgrades_and_connect_are_refused_before_the_stream_opens() {
    let h = Harness::new(SEED);
    let attrs = NoAttributes;
    let json: (&[u8], &[u8]) = (b"content-type", b"application/json");
    let refusal_with = |method: &[u8], head: &[(&[u8], &[u8])], has_body: bool| match h
        .engine
        .inspect_head(method, head, has_body, &attrs)
    {
        toolgate_engine::Head::Done(outcome) => {
            assert_eq!(status(&outcome), 400);
            let body = reply_body(&outcome);
            assert!(
                body.starts_with(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600"#),
                "{body}"
            );
            Some(body)
        }
        _ => None,
    };
    let refusal = |method: &[u8], head: &[(&[u8], &[u8])]| refusal_with(method, head, true);
    // A WebSocket upgrade (Envoy sees the GET with its stream still open), with or without
    // a JSON Content-Type, and any other protocol named in Upgrade.
    let websocket: (&[u8], &[u8]) = (b"Upgrade", b"websocket");
    let body = refusal(b"GET", &[websocket]).unwrap_or_default();
    assert!(body.contains("Upgrade and CONNECT"), "{body}");
    assert!(refusal(b"GET", &[websocket, json]).is_some());
    assert!(refusal(b"POST", &[json, (b"upgrade", b" WebSocket ")]).is_some());
    assert!(refusal(b"POST", &[json, (b"upgrade", b"mcp/1")]).is_some());
    // Every value counts, not only the first (a host may pass repeats unjoined).
    assert!(refusal(b"GET", &[(b"upgrade", b"h2c"), websocket]).is_some());
    assert!(refusal(b"CONNECT", &[json]).is_some());
    assert!(refusal(b"connect", &[]).is_some());
    // An HTTP/2 extended CONNECT that ends its stream with its headers reaches Envoy's
    // upstream as a body-less GET with Upgrade: refused all the same.
    assert!(refusal_with(b"GET", &[websocket], false).is_some());
    assert!(refusal_with(b"CONNECT", &[], false).is_some());
    assert!(matches!(
        h.engine
            .inspect_head(b"GET", &[(b"upgrade", b"h2c")], false, &attrs),
        toolgate_engine::Head::Watch
    ));
    // curl --http2 asks for h2c on its first cleartext POST: Envoy drops it; judged as usual.
    assert!(matches!(
        h.engine
            .inspect_head(b"POST", &[json, (b"upgrade", b"h2c")], true, &attrs),
        toolgate_engine::Head::Inspect(_)
    ));
}

#[test]
fn a_call_the_server_turns_away_gives_its_global_counts_back() {
    let mut h = Harness::new(
        r#"{"version":"1","default":"deny","tools":{"t":{"limits":[
            {"counter":"c","window":"minute","max":4,"scope":"grant"},
            {"counter":"g","window":"hour","max":1,"scope":"global"}]}}}"#,
    );
    let forward = |o: toolgate_engine::outcome::Outcome| match o.verdict {
        Verdict::Forward(f) => f,
        other => panic!("expected a forward, got {other:?}"),
    };
    // Missing credentials (401, 403), a transport's refusal of the method, `Accept`, size
    // or content type (405, 406, 413, 415): the call never ran, so callers the server
    // refuses do not spend everyone's limit. The caller's own count stays (four calls use
    // its four).
    for status in [&b"401"[..], b"403", b"406", b"415"] {
        let mut f = forward(h.call("Bearer a", "t", "{}"));
        assert_eq!(f.held.len(), 1);
        assert_eq!(
            h.engine.refused_upstream(status, &mut f, &h.store),
            Ok(true)
        );
        assert!(f.held.is_empty() && f.limits.is_empty());
    }
    assert_eq!(
        reason(&h.call("Bearer a", "t", "{}")),
        Some(Reason::RateLimited)
    );
    // A call that ran, or may have, keeps its counts: a 5xx, and the 400 and 404 the
    // Python SDK's 2026-07-28 transport answers a handler's error with.
    let mut f = forward(h.call("Bearer b", "t", "{}"));
    for status in [&b"503"[..], b"400", b"404", b"429", b"4"] {
        assert_eq!(
            h.engine.refused_upstream(status, &mut f, &h.store),
            Ok(false)
        );
    }
    assert_eq!(
        h.engine.refused_upstream(b"200", &mut f, &h.store),
        Ok(false)
    );
    assert_eq!(f.held.len(), 1);
    assert_eq!(
        reason(&h.call("Bearer c", "t", "{}")),
        Some(Reason::RateLimited)
    );
    // Without a global limit nothing is held, and no status need be read.
    let mut own = Harness::new(
        r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"counter":"c","window":"minute","max":4}]}}}"#,
    );
    assert!(forward(own.call("Bearer a", "t", "{}")).held.is_empty());
}

#[test]
fn a_respelled_hidden_name_is_answered_as_its_visible_neighbours_are() {
    // Under `default: allow` a hidden tool gets the denial of the glob it falls under, as
    // sent or as a server respells it: nothing tells it from a visible neighbour.
    let mut h = Harness::new(
        r#"{"version":"1","default":"allow","hide":["secret_tool"],
            "tools":{"secret_*":{"action":"deny","reason":"Secret tools are off limits."}}}"#,
    );
    let shown = |h: &mut Harness, name: &str| {
        let o = h.call("k", name, "{}");
        reply_body(&o).replace(name, "NAME")
    };
    for (hidden, visible) in [
        ("secret_tool", "secret_other"),
        ("secretTool", "secretOther"),
        ("secret-tool", "secret-other"),
        ("SecretTool", "SecretOther"),
    ] {
        assert_eq!(shown(&mut h, hidden), shown(&mut h, visible), "{hidden}");
    }
    assert_eq!(
        reason(&h.call("k", "secretTool", "{}")),
        Some(Reason::Hidden)
    );
    // The same whatever the default, and where an allowing glob meets the name as sent.
    for policy in [
        r#"{"version":"1","default":"deny","hide":["secretTool"],
            "tools":{"secret_*":{"action":"deny","reason":"R"}}}"#,
        r#"{"version":"1","default":"deny","hide":["secretTool"],
            "tools":{"secret*":{},"secret_*":{"action":"deny","reason":"R"}}}"#,
        r#"{"version":"1","default":"allow","hide":["secretTool"],
            "tools":{"secret*":{},"secret_*":{"action":"deny","reason":"R"}}}"#,
    ] {
        let mut h = Harness::new(policy);
        for (hidden, visible) in [("secretTool", "secretFoo"), ("secret-tool", "secret-foo")] {
            assert_eq!(
                shown(&mut h, hidden),
                shown(&mut h, visible),
                "{hidden} under {policy}"
            );
        }
    }
}

#[test]
fn a_listed_name_outside_tool_names_meets_the_entries_of_its_letters() {
    // An aggregator may route `cache/delete` to `cache_delete`: listing the former does
    // not admit what the policy denies or hides under the latter.
    let mut h = Harness::new(
        r#"{"version":"1","default":"deny","hide":["cache_flush"],
            "tools":{"cache/delete":{},"cache/flush":{},"cache/get":{},"cache_delete":{"action":"deny"}}}"#,
    );
    assert_eq!(
        reason(&h.call("k", "cache/delete", "{}")),
        Some(Reason::ToolDenied)
    );
    assert_eq!(
        reason(&h.call("k", "cache/flush", "{}")),
        Some(Reason::Hidden)
    );
    assert!(forwarded(&h.call("k", "cache/get", "{}")));
}

#[test]
fn regex_searches_share_a_step_budget_and_running_out_fails_closed() {
    // `[a-z]{1,100}x` costs about 200 steps a character: over a megabyte of letters that
    // would be seconds of a worker. Out of steps, the condition is unsure.
    let cfg = |cond: &str| {
        format!(
            r#"{{"policy":{{"version":"1","default":"deny","tools":{{"t":{{{cond}}}}}}},"max_body_bytes":4194304}}"#
        )
    };
    let mut deny = Harness::new(&cfg(
        r#""deny_if":[{"path":"args.q","op":"regex","value":"[a-z]{1,100}x"}]"#,
    ));
    let mut require = Harness::new(&cfg(
        r#""require":[{"path":"args.q","op":"regex","value":"[a-z]{1,100}$"}]"#,
    ));
    let small = format!(r#"{{"q":"{}"}}"#, "a".repeat(1000));
    let large = format!(r#"{{"q":"{}"}}"#, "a".repeat(3 << 20));
    assert!(forwarded(&deny.call("k", "t", &small)));
    assert!(forwarded(&require.call("k", "t", &small)));
    assert_eq!(
        reason(&deny.call("k", "t", &large)),
        Some(Reason::DenyIfMatched)
    );
    assert_eq!(
        reason(&require.call("k", "t", &large)),
        Some(Reason::RequireFailed)
    );
    // Each request has a budget of its own.
    assert!(forwarded(&deny.call("k", "t", &small)));
}

#[test]
fn a_respelled_hidden_name_denied_by_default_is_hidden_to_operators() {
    let mut h =
        Harness::new(r#"{"version":"1","default":"deny","hide":["h_x"],"tools":{"cache_get":{}}}"#);
    for name in ["h_x", "hX", "h-x"] {
        let o = h.call("k", name, "{}");
        assert_eq!(reason(&o), Some(Reason::Hidden), "{name}");
        // The agent is told what any name the policy does not allow is told.
        assert!(
            reply_body(&o).contains(r#""reason":"not_allowed","rule":"default""#),
            "{name}: {}",
            reply_body(&o)
        );
    }
    assert_eq!(
        reason(&h.call("k", "other", "{}")),
        Some(Reason::NotAllowed)
    );
}
