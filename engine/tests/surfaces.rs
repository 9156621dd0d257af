#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Globs, resources and prompts rules, MCP headers, and list-response filtering.

mod common;
use common::*;
use toolgate_engine::listing::PendingList;
use toolgate_engine::outcome::{Reason, Rejection, Verdict};
use toolgate_engine::policy::Kind;
use toolgate_engine::sse::SseFilter;
use toolgate_engine::ResponseMode;

const GLOBS: &str = r#"{"version":"1","default":"deny","hide":["*_secret"],"tools":{
    "*":{"limits":[{"counter":"any","window":"minute","max":100}]},
    "cache_*":{"action":"allow"},
    "cache_de*":{"action":"deny","reason":"No deleting."},
    "cache_delete_one":{},
    "db.*":{"require":[{"path":"args.ro","op":"eq","value":true}]}}}"#;

#[test]
fn glob_precedence_exact_then_most_specific() {
    let mut h = Harness::new(GLOBS);
    assert!(forwarded(&h.call("k", "cache_get", "{}")), "cache_* allows");
    let o = h.call("k", "cache_delete", "{}");
    assert_eq!(
        reason(&o),
        Some(Reason::ToolDenied),
        "cache_de* is more specific than cache_*"
    );
    assert!(reply_body(&o).contains("No deleting."));
    assert!(
        forwarded(&h.call("k", "cache_delete_one", "{}")),
        "exact beats every glob"
    );
    assert!(
        forwarded(&h.call("k", "CACHE_GET", "{}")),
        "globs match case-insensitively"
    );
    assert!(
        forwarded(&h.call("k", "anything_else", "{}")),
        "* matches the rest"
    );
    assert_eq!(
        reason(&h.call("k", "db.query", r#"{"ro":false}"#)),
        Some(Reason::RequireFailed)
    );
    assert!(forwarded(&h.call("k", "db.query", r#"{"ro":true}"#)));
    assert_eq!(
        reason(&h.call("k", "cache_secret", "{}")),
        Some(Reason::Hidden),
        "hide globs"
    );
}

const RESOURCES: &str = r#"{"version":"1","default":"allow","resources":{
    "default":"allow",
    "hide":["file:///secret/*"],
    "rules":{
      "file:///etc/*":{"action":"deny","reason":"System files are off limits."},
      "db://prod/*":{"deny_if":[{"path":"args.uri","op":"contains","value":"users"}],"limits":[{"counter":"prod_reads","window":"minute","max":2}]}}},
    "prompts":{"default":"deny","rules":{"summarize":{},"admin_*":{"action":"require_approval"}}}}"#;

fn read(h: &mut Harness, uri: &str) -> toolgate_engine::outcome::Outcome {
    h.post(
        "k",
        &format!(
            r#"{{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{{"uri":"{uri}"}}}}"#
        ),
    )
}

#[test]
fn hidden_uris_answer_to_the_readings_rule_keys_answer_to() {
    // A hidden URI with a query is hidden without its query too, as a rule key is.
    let mut h = Harness::new(
        r#"{"version":"1","default":"allow","resources":{"hide":["git://repo?ref=main"],
            "rules":{"db://t?mode=admin":{"action":"deny"}}}}"#,
    );
    for uri in [
        "git://repo?ref=main",
        "git://repo?ref=main&x=1",
        "git://repo",
        "GIT://repo",
    ] {
        assert_eq!(reason(&read(&mut h, uri)), Some(Reason::Hidden), "{uri}");
    }
    for uri in ["db://t?mode=admin", "db://t?mode=admin&x=1", "db://t"] {
        assert_eq!(
            reason(&read(&mut h, uri)),
            Some(Reason::ToolDenied),
            "{uri}"
        );
    }
    assert!(forwarded(&read(&mut h, "git://other")));
}

#[test]
fn resource_rules_under_both_readings() {
    let mut h = Harness::new(RESOURCES);
    assert!(forwarded(&read(&mut h, "file:///srv/readme.md")));
    let o = read(&mut h, "file:///etc/passwd");
    assert_eq!(reason(&o), Some(Reason::ToolDenied));
    let body = reply_body(&o);
    assert!(body.starts_with(r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32003,"message":"Toolgate denied resource \"file:///etc/passwd\": System files are off limits.""#), "{body}");
    for sneaky in [
        "file:///srv/../etc/passwd",
        "file:///%65tc/passwd",
        "FILE:///etc/passwd",
        "file:////etc//passwd",
        "file:///srv/%252e%252e/etc/passwd",
    ] {
        assert_eq!(
            reason(&read(&mut h, sneaky)),
            Some(Reason::ToolDenied),
            "{sneaky}"
        );
    }
    assert_eq!(
        reason(&read(&mut h, "file:///secret/key")),
        Some(Reason::Hidden)
    );
    assert_eq!(
        reason(&read(&mut h, "file:///x/../secret/key")),
        Some(Reason::Hidden)
    );
    assert_eq!(
        reason(&read(&mut h, "file:///a b")),
        Some(Reason::InvalidName)
    );
    assert_eq!(
        reason(&read(&mut h, "db://prod/users")),
        Some(Reason::DenyIfMatched)
    );
    assert!(forwarded(&read(&mut h, "db://prod/orders")));
    assert!(forwarded(&read(&mut h, "db://prod/items")));
    assert_eq!(
        reason(&read(&mut h, "db://prod/orders")),
        Some(Reason::RateLimited)
    );
}

#[test]
fn resource_rules_under_every_server_reading() {
    let policy = r#"{"version":"1","default":"deny","tools":{},"resources":{"default":"allow",
      "hide":["https://internal.example/*"],
      "rules":{
        "notes://secret":{"action":"deny"},
        "file:///srv/secret.txt":{"action":"deny"},
        "file:///data/*":{},
        "file:///data/metered.txt":{"limits":[{"counter":"metered","window":"minute","max":2}]}}}}"#;
    let mut h = Harness::new(policy);
    let mut expect = |uris: &[&str], want: Option<Reason>| {
        for uri in uris {
            assert_eq!(reason(&read(&mut h, uri)), want, "{uri}");
        }
    };
    // The Python SDK matches `notes://{name}{?v}` whatever query or fragment follows.
    let query = [
        "notes://secret",
        "notes://secret#x",
        "notes://secret?",
        "notes://secret?v=1",
    ];
    expect(&query, Some(Reason::ToolDenied));
    // Spellings JavaScript's `new URL` serialises to the protected URI (the TypeScript SDK
    // looks resources up by that).
    let url = [
        "file://localhost/srv/secret.txt",
        "file:/srv/secret.txt",
        "file:srv/secret.txt",
        "notes://secret:",
    ];
    expect(&url, Some(Reason::ToolDenied));
    // Python's `urlparse(…).path`, Node's `URL.pathname` and Go's `url.Parse(…).Path` drop a
    // file URI's host, whatever it is.
    let hosted = [
        "file://evil/srv/secret.txt",
        "file://127.0.0.1/srv/secret.txt",
        "file://[::1]/srv/secret.txt",
        "file://../srv/secret.txt",
        "file://h:80/srv/secret.txt?x",
        // The host ends at the first `/` as sent: an escaped one is the host's.
        "file://x%2Fsafe/srv/secret.txt",
        "file://x%3F/srv/secret.txt",
        "file://a%40b%2Fc/srv/secret.txt",
    ];
    expect(&hosted, Some(Reason::ToolDenied));
    let hidden = [
        "https://internal.example:443/secret",
        // `;` parameters, which `urlparse(…).path` and servlet containers drop.
        "https://internal.example/secret;x",
        "https://internal.example/secret;",
        "https://internal.example/public/..;/secret",
        "https:internal.example/secret",
        "https:/internal.example/secret",
        "https://@internal.example/secret",
        "https://internal.example:/secret",
        "https://INTERNAL.example/secret",
    ];
    expect(&hidden, Some(Reason::Hidden));
    expect(
        &["notes://public?v=1", "https://other.example/secret"],
        None,
    );
    // Every rule a reading meets counts the call: the glob as sent, the exact rule (with
    // its limit) as decoded.
    expect(
        &["file:///data/metered.txt", "file:///data/./metered.txt"],
        None,
    );
    let respelled = [
        "file:///data/%6detered.txt",
        "file:///data//metered.txt",
        "file:///data/x/../metered.txt",
        "file:///data/metered.txt?x",
    ];
    expect(&respelled, Some(Reason::RateLimited));
    expect(&["file:///data/other.txt"], None);
    assert!(forwarded(&read(&mut h, "file:///data/other.txt")));
}

/// Every URI of `uris` that is forwarded (should be none).
fn forwarded_uris(h: &mut Harness, uris: &[&str]) -> Vec<String> {
    uris.iter()
        .filter(|u| forwarded(&read(h, u)))
        .map(|u| u.to_string())
        .collect()
}

/// Servers meet URIs through templates: the Python SDK's FastMCP compiles
/// `docs://{name}.md` into a regular expression without escaping it (a `.` matches any
/// character), every SDK sends a URI a template matches to that template's handler, and
/// FastMCP coerces what a variable captures to its parameter's type (pydantic: `007` is
/// 7, a UUID in any spelling one UUID). A Windows server's `url2pathname` decodes `%5C`
/// into a path separator and upper-cases the drive letter.
#[test]
fn resource_rules_meet_uris_as_server_templates_read_them() {
    let policy = r#"{"version":"1","default":"allow","resources":{"default":"allow",
      "hide":["docs://internal-*.md","users://{id}/secret","file:///C:/secret/*"],
      "rules":{"docs://secret.md":{"action":"deny"},
               "https://api.github.com/repos/acme/secret":{"action":"deny"},
               "vault://{name}":{"action":"deny"},
               "users://7/profile":{"action":"deny"},
               "items://123e4567-e89b-12d3-a456-426614174000":{"action":"deny"},
               "file:///C:/srv/secret.txt":{"action":"deny"},
               "notes://public.md":{}}}}"#;
    let mut h = Harness::new(policy);
    for uri in [
        "docs://secret.md",
        "docs://internal-plan.md",
        "file:///C:/secret/key.txt",
        "file:///C:/srv/x/../secret.txt",
    ] {
        assert!(!forwarded(&read(&mut h, uri)), "{uri}");
    }
    let leaks = forwarded_uris(
        &mut h,
        &[
            "docs://secretXmd",
            "docs://internal-planXmd",
            "https://apiXgithubXcom/repos/acme/secret",
            "users://42/secret",
            "vault://root",
            "users://007/profile",
            "users://+7/profile",
            "users://0_7/profile",
            "items://123E4567E89B12D3A456426614174000",
            "items://123e4567e89b12d3a456426614174000",
            "items://%7B123e4567-e89b-12d3-a456-426614174000%7D",
            "file:///C:/secret%5Ckey.txt",
            "file:///C:/srv/x/..%5Csecret.txt",
            "file:///C:/srv/x%5C..%5Csecret.txt",
            "file:///C:/srv%5Csecret.txt",
            "file:///c:/secret/key.txt",
            "file:///c:/srv/secret.txt",
        ],
    );
    assert!(leaks.is_empty(), "forwarded: {leaks:#?}");
    // Other URIs, and allow rules (which keep to their text), are as before.
    for uri in [
        "docs://public.md",
        "users://8/profile",
        "users://42/public",
        "notes://public.md",
        "notes://publicXmd",
        "file:///C:/srv/public.txt",
    ] {
        assert!(forwarded(&read(&mut h, uri)), "{uri}");
    }
}

#[test]
fn conditions_on_the_uri_read_it_as_the_server_does() {
    let mut h = Harness::new(
        r#"{"version":"1","default":"allow","resources":{"default":"deny","rules":{
         "db://prod/*":{"deny_if":[{"path":"args.uri","op":"contains","value":"users"}]},
         "file:///srv/*":{"require":[{"path":"args.uri","op":"regex","value":"^file:///srv/public/"}]}}}}"#,
    );
    for uri in [
        "db://prod/users",
        "db://prod/%75sers",
        "db://prod/%2575sers",
        "db://prod/u%73ers?x=1",
    ] {
        assert_eq!(
            reason(&read(&mut h, uri)),
            Some(Reason::DenyIfMatched),
            "{uri}"
        );
    }
    for uri in [
        "file:///srv/private/key",
        "file:///srv/public/../private/key",
        "file:///srv/public/%2e%2e/private/key",
        "file:///srv/public/..%2fprivate/key",
    ] {
        assert_eq!(
            reason(&read(&mut h, uri)),
            Some(Reason::RequireFailed),
            "{uri}"
        );
    }
    // Params that the reading's re-read refuses (keys differing by case deep inside) deny.
    let o = h.post(
        "k",
        r#"{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"db://prod/%75sers","_meta":{"y":{"k":1,"K":2}}}}"#,
    );
    assert!(!forwarded(&o));
    assert!(forwarded(&read(&mut h, "db://prod/orders")));
    assert!(forwarded(&read(&mut h, "file:///srv/public/readme.md")));
    assert!(forwarded(&read(&mut h, "file:///srv/public/a%20b.md")));
}

#[test]
fn uris_compared_in_conditions_meet_the_request_under_each_reading() {
    let mut h = Harness::new(
        r#"{"version":"1","default":"allow","resources":{"default":"allow","rules":{
         "file:///srv/*":{"require":[{"path":"args.uri","op":"in","value":["file:///srv/My%20Report.pdf","file:///srv/a.txt?v=2"]}]},
         "db://prod/*":{"deny_if":[{"path":"args.uri","op":"eq","value":"db://prod/%75sers"}]},
         "notes://*":{"require":[{"path":"args.uri","op":"neq","value":"notes://vault/a/../secret"}]}}}}"#,
    );
    // The URIs an allow-list names, as written, pass: each reading of the request meets
    // the same reading of the literal.
    for uri in ["file:///srv/My%20Report.pdf", "file:///srv/a.txt?v=2"] {
        assert!(forwarded(&read(&mut h, uri)), "{uri}");
    }
    for uri in [
        "file:///srv/Other.pdf",
        "file:///srv/My%20Report.pdf/../../etc/passwd",
        "file:///srv/a.txt?v=3",
    ] {
        assert_eq!(
            reason(&read(&mut h, uri)),
            Some(Reason::RequireFailed),
            "{uri}"
        );
    }
    // A denied URI is denied however either side spells it.
    for uri in ["db://prod/users", "db://prod/%75sers", "db://prod/./users"] {
        assert_eq!(
            reason(&read(&mut h, uri)),
            Some(Reason::DenyIfMatched),
            "{uri}"
        );
    }
    assert!(forwarded(&read(&mut h, "db://prod/orders")));
    for uri in [
        "notes://vault/secret",
        "notes://VAULT/%73ecret",
        "notes://vault/a/../secret",
    ] {
        assert_eq!(
            reason(&read(&mut h, uri)),
            Some(Reason::RequireFailed),
            "{uri}"
        );
    }
    assert!(forwarded(&read(&mut h, "notes://vault/public")));
    // The denial shows the literals as the policy writes them, not their readings.
    let o = read(&mut h, "file:///srv/Other.pdf");
    let body = reply_body(&o);
    assert!(
        body.contains("My%20Report.pdf") && !body.contains("My Report.pdf"),
        "{body}"
    );
}

#[test]
fn allow_lists_meet_uris_as_the_server_names_them() {
    let policy = r#"{"version":"1","default":"deny","tools":{},"resources":{"default":"deny",
      "rules":{"git://repo?ref=main":{},"postgres://user@host/db":{},"https://api.example.com":{},
        "repo://MyOrg/proj":{},"notes://a?v=1":{},"file:///srv/*":{}}}}"#;
    let mut h = Harness::new(policy);
    for uri in [
        "git://repo?ref=main",
        "postgres://user@host/db",
        "https://api.example.com",
        "repo://MyOrg/proj",
        "notes://a?v=1",
        "file:///srv/readme.md",
    ] {
        assert!(forwarded(&read(&mut h, uri)), "{uri}");
    }
    for uri in [
        "git://repo?ref=evil",
        "postgres://other@host/db",
        "file:///srv/../etc/passwd",
        "file:///srv/%2e%2e/etc/passwd",
    ] {
        assert_eq!(
            reason(&read(&mut h, uri)),
            Some(Reason::NotAllowed),
            "{uri}"
        );
    }
}

#[test]
fn prompt_rules() {
    let mut h = Harness::new(RESOURCES);
    let get = |h: &mut Harness, name: &str| {
        h.post("k", &format!(r#"{{"jsonrpc":"2.0","id":"p","method":"prompts/get","params":{{"name":"{name}","arguments":{{}}}}}}"#))
    };
    assert!(forwarded(&get(&mut h, "summarize")));
    assert!(forwarded(&get(&mut h, "SUMMARIZE")));
    assert_eq!(reason(&get(&mut h, "other")), Some(Reason::NotAllowed));
    assert_eq!(
        reason(&get(&mut h, "admin_reset")),
        Some(Reason::ApprovalRequired)
    );
    assert_eq!(
        reason(&get(&mut h, "ｓummarize")),
        Some(Reason::InvalidName)
    );
    assert!(reply_body(&get(&mut h, "other")).contains(r#""id":"p","error""#));
    // A respelling a server may look the prompt up by meets its rules.
    let mut open = Harness::new(
        r#"{"version":"1","default":"allow","prompts":{"default":"allow","rules":{"admin_reset":{"action":"require_approval"},"drop_*":{"action":"deny"}}}}"#,
    );
    for (name, expected) in [
        ("adminReset", Reason::ApprovalRequired),
        ("admin-reset", Reason::ApprovalRequired),
        ("ADMINRESET", Reason::ApprovalRequired),
        ("dropAll", Reason::ToolDenied),
    ] {
        assert_eq!(reason(&get(&mut open, name)), Some(expected), "{name}");
    }
    assert!(forwarded(&get(&mut open, "dropped")));
    // Without a prompts section prompts/get is not judged.
    let mut plain = Harness::new(SEED);
    assert!(forwarded(&get(&mut plain, "anything")));
}

#[test]
fn completions_and_subscriptions_are_judged_by_access_alone() {
    let mut h = Harness::new(RESOURCES);
    let complete = |h: &mut Harness, method: &str, reference: &str| {
        h.post("k", &format!(r#"{{"jsonrpc":"2.0","id":"c","method":"{method}","params":{{"ref":{reference},"argument":{{"name":"a","value":"x"}}}}}}"#))
    };
    let prompt = |name: &str| format!(r#"{{"type":"ref/prompt","name":"{name}"}}"#);
    let template = |uri: &str| format!(r#"{{"type":"ref/resource","uri":"{uri}"}}"#);
    let m = "completion/complete";
    assert!(forwarded(&complete(&mut h, m, &prompt("summarize"))));
    assert_eq!(
        reason(&complete(&mut h, m, &prompt("other"))),
        Some(Reason::NotAllowed)
    );
    assert_eq!(
        reason(&complete(&mut h, m, &prompt("admin_reset"))),
        Some(Reason::ApprovalRequired)
    );
    // Spelled as a lenient router reads it.
    for spelling in [
        "Completion/Complete",
        "completion_complete",
        "completionComplete",
    ] {
        assert_eq!(
            reason(&complete(&mut h, spelling, &prompt("other"))),
            Some(Reason::NotAllowed),
            "{spelling}"
        );
    }
    // A template names what it expands to, whatever its expressions' operators.
    for t in [
        "file:///secret/{name}",
        "file:///secret{/name}",
        "file:///secret/{+p}",
    ] {
        let hidden = complete(&mut h, m, &template(t));
        assert_eq!(reason(&hidden), Some(Reason::Hidden), "{t}");
        assert!(reply_body(&hidden).contains(r#""reason":"not_allowed""#));
    }
    assert!(forwarded(&complete(
        &mut h,
        m,
        &template("file:///{+path}")
    )));
    // Under `default: deny` a rule naming a template's text allows its completions: what it
    // expands to is read for hiding only.
    let mut strict = Harness::new(
        r#"{"version":"1","default":"allow","resources":{"default":"deny","hide":["notes://secret/*"],
          "rules":{"notes://{id}":{},"notes://secret{/id}":{}}}}"#,
    );
    assert!(forwarded(&complete(
        &mut strict,
        m,
        &template("notes://{id}")
    )));
    assert_eq!(
        reason(&complete(&mut strict, m, &template("notes://secret{/id}"))),
        Some(Reason::Hidden)
    );
    assert_eq!(
        reason(&complete(&mut strict, m, &template("notes://other/{id}"))),
        Some(Reason::NotAllowed)
    );
    assert_eq!(
        reason(&complete(&mut h, m, &template("file:///etc/{file}"))),
        Some(Reason::ToolDenied)
    );
    // A ref naming both is judged by both.
    let both = r#"{"type":"ref/prompt","name":"summarize","uri":"file:///etc/{f}"}"#;
    assert_eq!(reason(&complete(&mut h, m, both)), Some(Reason::ToolDenied));
    // In a batch too, with one answer for its id.
    let batch = format!(
        r#"[{{"jsonrpc":"2.0","id":"c","method":"{m}","params":{{"ref":{both}}}}},{{"jsonrpc":"2.0","id":"d","method":"ping"}}]"#
    );
    let o = h.post("k", &batch);
    assert_eq!(reason(&o), Some(Reason::ToolDenied));
    let body = reply_body(&o);
    assert_eq!(body.matches(r#""id":"c""#).count(), 1, "{body}");
    assert_eq!(body.matches(r#""id":"d""#).count(), 1, "{body}");
    // Conditions and limits are about reading: completing and subscribing neither meets
    // them nor counts.
    for _ in 0..3 {
        assert!(forwarded(&complete(
            &mut h,
            m,
            &template("db://prod/{users}")
        )));
    }
    let subscribe = |h: &mut Harness, method: &str, uri: &str| {
        h.post(
            "k",
            &format!(
                r#"{{"jsonrpc":"2.0","id":5,"method":"{method}","params":{{"uri":"{uri}"}}}}"#
            ),
        )
    };
    assert!(forwarded(&subscribe(
        &mut h,
        "resources/subscribe",
        "db://prod/users"
    )));
    assert!(forwarded(&read(&mut h, "db://prod/orders")));
    assert!(forwarded(&read(&mut h, "db://prod/orders")));
    assert_eq!(
        reason(&read(&mut h, "db://prod/orders")),
        Some(Reason::RateLimited)
    );
    for method in [
        "resources/subscribe",
        "resources/unsubscribe",
        "Resources/Subscribe",
    ] {
        assert_eq!(
            reason(&subscribe(&mut h, method, "file:///secret/key")),
            Some(Reason::Hidden),
            "{method}"
        );
        assert_eq!(
            reason(&subscribe(&mut h, method, "file:///x/../etc/passwd")),
            Some(Reason::ToolDenied),
            "{method}"
        );
    }
    // Shapes a lenient server may read as naming one: refused, as prompts/get refuses them.
    for params in [
        r#"[{"type":"ref/prompt","name":"other"},{"name":"a","value":""}]"#,
        r#"{"ref":{"type":"ref/prompt","name":["other"]}}"#,
        r#"{"ref":{"type":"ref/resource","uri":["file:///secret/{x}"]}}"#,
        r#"{"ref":"{\"type\":\"ref/prompt\",\"name\":\"other\"}"}"#,
        r#"{"ref":[{"type":"ref/prompt","name":"other"}]}"#,
        r#"{"ref":{"type":"ref/prompt"}}"#,
        r#"{"argument":{"name":"a","value":""}}"#,
        r#""other""#,
    ] {
        let o = h.post(
            "k",
            &format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{params}}}"#
            ),
        );
        assert_eq!(status(&o), 400, "{params}: {}", reply_body(&o));
    }
    for params in [
        r#"["file:///secret/k"]"#,
        r#"{"uri":["file:///secret/k"]}"#,
        "{}",
    ] {
        let o = h.post(
            "k",
            &format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{params}}}"#
            ),
        );
        assert_eq!(status(&o), 400, "{params}: {}", reply_body(&o));
    }
    let o = h.post(
        "k",
        r#"{"jsonrpc":"2.0","id":1,"method":"resources/subscribe"}"#,
    );
    assert_eq!(status(&o), 400, "{}", reply_body(&o));
    // 2026-07-28 subscribes with `subscriptions/listen`: every URI it names is judged.
    let listen = |h: &mut Harness, notifications: &str| {
        h.post(
            "k",
            &format!(
                r#"{{"jsonrpc":"2.0","id":"listen-1","method":"subscriptions/listen","params":{{"notifications":{notifications}}}}}"#
            ),
        )
    };
    for allowed in [
        r#"{"resourceSubscriptions":["db://prod/users"],"toolsListChanged":true}"#,
        r#"{"toolsListChanged":true,"taskIds":["t1"]}"#,
        r#"{"resourceSubscriptions":[]}"#,
        r#"{"resourceSubscriptions":null}"#,
    ] {
        assert!(forwarded(&listen(&mut h, allowed)), "{allowed}");
    }
    for (notifications, why) in [
        (
            r#"{"resourceSubscriptions":["file:///secret/key"]}"#,
            Reason::Hidden,
        ),
        (
            r#"{"resourceSubscriptions":["db://prod/users","file:///x/../etc/passwd"]}"#,
            Reason::ToolDenied,
        ),
        (
            r#"{"resourceSubscriptions":["db://prod/users","file:///secret/{x}"]}"#,
            Reason::Hidden,
        ),
    ] {
        let o = listen(&mut h, notifications);
        assert_eq!(reason(&o), Some(why), "{notifications}");
        assert!(
            reply_body(&o).contains(r#""id":"listen-1""#),
            "{}",
            reply_body(&o)
        );
    }
    for method in ["Subscriptions/Listen", "subscriptions_listen"] {
        let o = h.post(
            "k",
            &format!(
                r#"{{"jsonrpc":"2.0","id":2,"method":"{method}","params":{{"notifications":{{"resourceSubscriptions":["file:///secret/key"]}}}}}}"#
            ),
        );
        assert_eq!(reason(&o), Some(Reason::Hidden), "{method}");
    }
    // Shapes a lenient server may read as subscribing: refused.
    let many = vec![r#""db://prod/users""#; 1001].join(",");
    for notifications in [
        r#"{"resource_subscriptions":["file:///secret/key"]}"#,
        r#"{"ResourceSubscriptions":["file:///secret/key"]}"#,
        r#"{"resourceSubscriptions":"file:///secret/key"}"#,
        r#"{"resourceSubscriptions":[["file:///secret/key"]]}"#,
        r#"{"resourceSubscriptions":[{"uri":"file:///secret/key"}]}"#,
        r#"["file:///secret/key"]"#,
        &format!(r#"{{"resourceSubscriptions":[{many}]}}"#),
    ] {
        let o = listen(&mut h, notifications);
        assert_eq!(status(&o), 400, "{notifications}: {}", reply_body(&o));
    }
    let o = h.post(
        "k",
        r#"{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"Notifications":{"resourceSubscriptions":["file:///secret/key"]}}}"#,
    );
    assert_eq!(status(&o), 400, "{}", reply_body(&o));
    // A look-alike of `ref` is refused, not passed around the check.
    let o = h.post(
        "k",
        r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"Ref":{"type":"ref/prompt","name":"other"}}}"#,
    );
    assert_eq!(status(&o), 400, "{}", reply_body(&o));
    // Without prompts or resources sections neither is judged.
    let mut plain = Harness::new(SEED);
    let positional = r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":[1]}"#;
    assert!(forwarded(&plain.post("k", positional)));
    assert!(forwarded(&complete(&mut plain, m, &prompt("anything"))));
    assert!(forwarded(&subscribe(
        &mut plain,
        "resources/subscribe",
        "file:///secret/key"
    )));
    assert!(forwarded(&listen(
        &mut plain,
        r#"{"resourceSubscriptions":["file:///secret/key"]}"#
    )));
}

#[test]
fn mcp_headers_must_match_the_body() {
    let mut h = Harness::new(SEED);
    let body = call_body(9, "cache_cas", "{}");
    let with = |h: &mut Harness, extra: &[(&str, &str)]| {
        let mut headers = vec![("content-type", "application/json"), ("authorization", "k")];
        headers.extend_from_slice(extra);
        h.request(&headers, &body)
    };
    assert!(forwarded(&with(
        &mut h,
        &[("mcp-method", "tools/call"), ("mcp-name", "cache_cas")]
    )));
    assert!(forwarded(&with(
        &mut h,
        &[
            ("mcp-method", "tools/call"),
            ("mcp-name", "=?base64?Y2FjaGVfY2Fz?=")
        ]
    )));
    for bad in [
        vec![("mcp-method", "tools/list")],
        vec![("mcp-method", "TOOLS/CALL")],
        vec![("mcp-method", "tools/call"), ("mcp-name", "cache_delete")],
        vec![("mcp-name", "=?base64?Y2FjaGVfZGVsZXRl?=")],
        vec![("mcp-name", "=?base64?!!?=")],
    ] {
        let o = with(&mut h, &bad);
        assert_eq!(status(&o), 400, "{bad:?}");
        assert_eq!(
            o.report.rejection.as_ref().map(|r| r.0),
            Some(Rejection::HeaderMismatch)
        );
        assert!(
            reply_body(&o).starts_with(r#"{"jsonrpc":"2.0","id":9,"error":{"code":-32020"#),
            "{}",
            reply_body(&o)
        );
    }
}

#[test]
fn mcp_param_headers_must_carry_the_body_arguments() {
    let mut h = Harness::new(r#"{"version":"1","default":"allow"}"#);
    let body = call_body(
        5,
        "deploy",
        r#"{"region":"eu-west","replicas":3,"dry":false,"dry_run":true,"target":{"Tenant":"acme"},"note":"r\u00e9gion"}"#,
    );
    let with = |h: &mut Harness, extra: &[(&str, &str)]| {
        let mut headers = vec![("content-type", "application/json"), ("authorization", "k")];
        headers.extend_from_slice(extra);
        h.request(&headers, &body)
    };
    for good in [
        vec![("mcp-param-region", "eu-west")],
        vec![("Mcp-Param-Region", "eu-west"), ("mcp-param-replicas", "3")],
        // Numbers by value, booleans as the SDKs render them.
        vec![("mcp-param-replicas", "3.0"), ("mcp-param-dry", "false")],
        // Nested properties; the base64 form; a token naming no argument mirrors any.
        vec![("mcp-param-tenant", "acme"), ("mcp-param-dry-run", "true")],
        vec![("mcp-param-note", "=?base64?csOpZ2lvbg==?=")],
        vec![("mcp-param-zone", "eu-west"), ("mcp-method", "tools/call")],
    ] {
        assert!(forwarded(&with(&mut h, &good)), "{good:?}");
    }
    for bad in [
        // The named argument holds another value, even if some argument holds this one.
        vec![("mcp-param-region", "us-east")],
        vec![("mcp-param-region", "acme")],
        vec![("mcp-param-replicas", "30")],
        vec![("mcp-param-dry", "true")],
        vec![("mcp-param-zone", "us-east")],
        // `Dry-Run` names `dry_run`, which holds another value; so does `DryRun`, as
        // conditions and alias-generating servers match names by letters and digits.
        vec![("mcp-param-dry-run", "eu-west")],
        vec![("mcp-param-DryRun", "eu-west")],
        vec![("mcp-param-region", "=?base64?!!?=")],
        vec![("mcp-param-region", "eu-west"), ("mcp-param-replicas", "4")],
    ] {
        let o = with(&mut h, &bad);
        assert_eq!(status(&o), 400, "{bad:?}");
        assert_eq!(
            o.report.rejection.as_ref().map(|r| r.0),
            Some(Rejection::HeaderMismatch),
            "{bad:?}"
        );
        assert!(
            reply_body(&o).starts_with(r#"{"jsonrpc":"2.0","id":5,"error":{"code":-32020"#),
            "{}",
            reply_body(&o)
        );
    }
    // Twice the same parameter: a first-copy and a last-copy reader would disagree.
    let o = with(
        &mut h,
        &[
            ("mcp-param-region", "eu-west"),
            ("Mcp-Param-Region", "us-east"),
        ],
    );
    assert_eq!(
        o.report.rejection.as_ref().map(|r| r.0),
        Some(Rejection::InvalidRequest)
    );
    // The count is bounded: each header is matched against every argument.
    let names: Vec<String> = (0..33).map(|i| format!("mcp-param-p{i}")).collect();
    let many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "eu-west")).collect();
    assert!(forwarded(&with(&mut h, &many[..32])));
    let o = with(&mut h, &many);
    assert_eq!(
        o.report.rejection.as_ref().map(|r| r.0),
        Some(Rejection::InvalidRequest)
    );
    // Only a tools/call has arguments to mirror; a batch has no single request.
    let list = r#"{"jsonrpc":"2.0","id":6,"method":"tools/list"}"#;
    let batch = format!("[{body}]");
    for other in [list, batch.as_str()] {
        let o = h.request(
            &[
                ("content-type", "application/json"),
                ("authorization", "k"),
                ("mcp-param-region", "eu-west"),
            ],
            other,
        );
        assert_eq!(
            o.report.rejection.as_ref().map(|r| r.0),
            Some(Rejection::HeaderMismatch),
            "{other}"
        );
    }
}

#[test]
fn an_mcp_param_header_does_not_show_a_hidden_tools_conditions() {
    let policy = |hidden: bool| {
        format!(
            r#"{{"version":"1","default":"deny","hide":[{}],"tools":{{"secret_tool":{{"deny_if":[{{"path":"args.zone","op":"eq","value":"prod"}}]}}}}}}"#,
            if hidden { r#""secret_tool""# } else { "" }
        )
    };
    let head = [
        ("content-type", "application/json"),
        ("authorization", "k"),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "secret_tool"),
        ("mcp-param-zone", "x"),
    ];
    let body = call_body(1, "secret_tool", r#"{"other":"x"}"#);
    let mut hidden = Harness::new(&policy(true));
    let o = hidden.request(&head, &body);
    assert_eq!(reason(&o), Some(Reason::Hidden), "{}", reply_body(&o));
    // What a tool the policy does not name gets with the same header and body.
    let mut unnamed = Harness::new(r#"{"version":"1","default":"deny"}"#);
    let n = unnamed.request(&head, &body);
    assert_eq!(reply_body(&o), reply_body(&n));
    // Not hidden, the header check reads the argument its condition judges.
    let mut listed = Harness::new(&policy(false));
    assert_eq!(status(&listed.request(&head, &body)), 400);
}

#[test]
fn an_mcp_param_header_cannot_supply_an_argument_the_policy_judges() {
    let mut h = Harness::new(
        r#"{"version":"1","default":"allow","tools":{
            "deploy":{"deny_if":[{"path":"args.target.region","op":"regex","value":"^us"}]},
            "read":{"deny_if":[{"path":"args.file_path","op":"regex","value":"^/etc/"}]},
            "spend":{"limits":[{"counter":"s","window":"minute","max":100,"increment_from":"args.amount"}]}}}"#,
    );
    let call = |h: &mut Harness, tool: &str, args: &str, header: (&str, &str)| {
        h.request(
            &[
                ("content-type", "application/json"),
                ("authorization", "k"),
                header,
            ],
            &call_body(3, tool, args),
        )
    };
    // The body has no region, but a server reading Mcp-Param-Region would get one that no
    // condition saw (even though the value is in the body under another name).
    for (tool, args, header) in [
        (
            "deploy",
            r#"{"target":{"zone":"us-east"}}"#,
            ("mcp-param-region", "us-east"),
        ),
        (
            "deploy",
            r#"{"target":{"zone":"us-east"}}"#,
            ("mcp-param-target", "us-east"),
        ),
        ("spend", r#"{"units":5}"#, ("mcp-param-amount", "5")),
        // `FilePath` names `file_path`, as conditions read argument names: the header must
        // be the value judged there.
        (
            "read",
            r#"{"file_path":"/tmp/x","note":"/etc/shadow"}"#,
            ("mcp-param-FilePath", "/etc/shadow"),
        ),
    ] {
        let o = call(&mut h, tool, args, header);
        assert_eq!(
            o.report.rejection.as_ref().map(|r| r.0),
            Some(Rejection::HeaderMismatch),
            "{tool} {header:?}"
        );
        assert!(
            reply_body(&o).contains("the policy judges"),
            "{}",
            reply_body(&o)
        );
    }
    // The header must be the value at the path the policy judges, not at another place
    // holding an argument of the same name.
    let o = call(
        &mut h,
        "deploy",
        r#"{"target":{"region":"eu-west"},"region":"us-east"}"#,
        ("mcp-param-region", "us-east"),
    );
    assert_eq!(
        o.report.rejection.as_ref().map(|r| r.0),
        Some(Rejection::HeaderMismatch)
    );
    assert!(forwarded(&call(
        &mut h,
        "deploy",
        r#"{"target":{"region":"eu-west"},"region":"us-east"}"#,
        ("mcp-param-region", "eu-west")
    )));
    // When the body holds the judged argument, the header must be its value, and is judged.
    assert!(forwarded(&call(
        &mut h,
        "deploy",
        r#"{"target":{"region":"eu-west"}}"#,
        ("mcp-param-region", "eu-west")
    )));
    // A token naming nothing the policy reads may mirror any argument.
    assert!(forwarded(&call(
        &mut h,
        "deploy",
        r#"{"target":{"region":"eu-west","zone":"eu-1"}}"#,
        ("mcp-param-az", "eu-1")
    )));
    assert!(forwarded(&call(
        &mut h,
        "other",
        r#"{"zone":"us-east"}"#,
        ("mcp-param-region", "us-east")
    )));
}

#[test]
fn list_requests_are_tracked_for_their_responses() {
    let mut h = Harness::new(r#"{"version":"1","default":"allow","hide":["cache_delete"]}"#);
    let o = h.post(
        "k",
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"cursor":"c1"}}"#,
    );
    let Verdict::Forward(f) = &o.verdict else {
        panic!()
    };
    assert_eq!(
        f.lists,
        vec![PendingList {
            id: "4".into(),
            kind: Kind::Tool
        }]
    );
    // Nothing hidden: nothing to track.
    let mut plain = Harness::new(SEED);
    let o = plain.post("k", r#"{"jsonrpc":"2.0","id":4,"method":"tools/list"}"#);
    assert!(matches!(&o.verdict, Verdict::Forward(f) if f.lists.is_empty()));
}

fn pending(id: &str) -> Vec<PendingList> {
    vec![PendingList {
        id: id.into(),
        kind: Kind::Tool,
    }]
}

const LIST: &str = r#"{"jsonrpc":"2.0","id":4,"result":{"tools":[{"name":"cache_get","inputSchema":{"type":"object"}},{"name":"cache_delete","description":"x"},{"name":"CACHE_DELETE"},{"name":"cache_set"}],"nextCursor":"n2"}}"#;

#[test]
fn json_list_filtering() {
    let h = Harness::new(r#"{"version":"1","default":"allow","hide":["cache_delete"]}"#);
    let rules = h.engine.list_rules();
    let p = pending("4");
    let out = rules.json_body(LIST.as_bytes(), &p).unwrap().unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"jsonrpc":"2.0","id":4,"result":{"tools":[{"name":"cache_get","inputSchema":{"type":"object"}},{"name":"cache_set"}],"nextCursor":"n2"}}"#
    );
    // A string id a client would match to the number.
    let p = pending("4");
    assert!(rules
        .json_body(LIST.replace("\"id\":4", "\"id\":\"4\"").as_bytes(), &p)
        .unwrap()
        .is_some());
    // A list answering another id is filtered all the same (a server keying answers by id
    // alone puts a list answer onto another request's stream), and so is one answering no
    // list request at all; a list without hidden tools is left alone.
    let p = pending("5");
    for p in [p.clone(), Vec::new()] {
        let out = rules.json_body(LIST.as_bytes(), &p).unwrap().unwrap();
        assert!(!String::from_utf8(out).unwrap().contains("cache_delete"));
    }
    let clean = r#"{"jsonrpc":"2.0","id":5,"result":{"tools":[{"name":"a"}]}}"#;
    assert_eq!(rules.json_body(clean.as_bytes(), &p).unwrap(), None);
    // Malformed while a list is awaited: refused.
    for bad in [
        LIST.replace("\"id\":4", "\"ID\":4"),
        LIST.replace("\"tools\"", "\"Tools\""),
        LIST.replace("{\"name\":\"cache_set\"}", "{\"Name\":\"cache_delete\"}"),
        LIST.replace("{\"name\":\"cache_set\"}", "7"),
        format!("{LIST} x"),
        LIST.replace("\"result\":{", "\"result\":{\"tools\":[],"),
    ] {
        let p = pending("4");
        assert!(rules.json_body(bad.as_bytes(), &p).is_err(), "{bad}");
    }
    // Keys that differ only by case in the data around the names read (a tool's schema
    // with properties `ID` and `id`) are the server's data, not look-alikes.
    let p = pending("4");
    let schema = LIST.replace(
        r#""inputSchema":{"type":"object"}"#,
        r#""inputSchema":{"type":"object","properties":{"ID":{},"id":{}}}"#,
    );
    let out = rules.json_body(schema.as_bytes(), &p).unwrap().unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains(r#"{"ID":{},"id":{}}"#) && !out.contains("cache_delete"));
    // A batch of responses.
    let batch = format!("[{LIST},{}]", r#"{"jsonrpc":"2.0","id":1,"result":{}}"#);
    let p = pending("4");
    let out = String::from_utf8(rules.json_body(batch.as_bytes(), &p).unwrap().unwrap()).unwrap();
    assert!(
        out.starts_with('[')
            && !out.contains("cache_delete")
            && out.contains(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#)
    );
}

#[test]
fn resource_template_lists_lose_hidden_templates() {
    let mut h = Harness::new(RESOURCES);
    // The request is awaited as a resources list, under any spelling a router reads.
    for method in ["resources/templates/list", "resources_templates_list"] {
        let o = h.post(
            "k",
            &format!(r#"{{"jsonrpc":"2.0","id":8,"method":"{method}"}}"#),
        );
        let toolgate_engine::outcome::Verdict::Forward(f) = &o.verdict else {
            panic!("{method}: {:?}", o.verdict)
        };
        assert_eq!(
            f.lists,
            vec![PendingList {
                id: "8".into(),
                kind: Kind::Resource
            }]
        );
    }
    let rules = h.engine.list_rules();
    let templates = r#"{"jsonrpc":"2.0","id":8,"result":{"resourceTemplates":[{"uriTemplate":"file:///srv/{name}","name":"srv"},{"uriTemplate":"file:///secret/{name}","name":"secret"},{"uriTemplate":"file:///secret{/name}","name":"s2"},{"uriTemplate":"notes://{id}","name":"notes"}]}}"#;
    let expected = r#"{"jsonrpc":"2.0","id":8,"result":{"resourceTemplates":[{"uriTemplate":"file:///srv/{name}","name":"srv"},{"uriTemplate":"notes://{id}","name":"notes"}]}}"#;
    for p in [pending_kind("8", Kind::Resource), Vec::new()] {
        let out = rules.json_body(templates.as_bytes(), &p).unwrap().unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }
    // Both arrays in one answer (a lenient client reads either) lose their hidden entries.
    let both = r#"{"jsonrpc":"2.0","id":8,"result":{"resourceTemplates":[{"uriTemplate":"file:///secret/{n}"},{"uriTemplate":"a://{x}"}],"resources":[{"uri":"file:///secret/k"},{"uri":"file:///srv/r"}]}}"#;
    let out = rules.json_body(both.as_bytes(), &[]).unwrap().unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"jsonrpc":"2.0","id":8,"result":{"resourceTemplates":[{"uriTemplate":"a://{x}"}],"resources":[{"uri":"file:///srv/r"}]}}"#
    );
    // A look-alike of the array or of the entry's name is refused.
    for bad in [
        templates.replace("resourceTemplates", "ResourceTemplates"),
        templates.replace(
            r#""uriTemplate":"file:///srv"#,
            r#""UriTemplate":"file:///srv"#,
        ),
    ] {
        assert!(
            rules
                .json_body(bad.as_bytes(), &pending_kind("8", Kind::Resource))
                .is_err(),
            "{bad}"
        );
    }
}

#[test]
fn answers_lose_every_hidden_kind_whatever_was_awaited() {
    let policy = r#"{"version":"1","default":"allow","hide":["cache_delete"],
      "resources":{"default":"allow","hide":["file:///secret/*"]},
      "prompts":{"default":"allow","hide":["admin_*"]}}"#;
    let h = Harness::new(policy);
    let rules = h.engine.list_rules();
    let tools = r#"{"jsonrpc":"2.0","id":5,"result":{"tools":[{"name":"cache_get"},{"name":"cache_delete"}]}}"#;
    let resources = r#"{"jsonrpc":"2.0","id":5,"result":{"resources":[{"uri":"file:///secret/key"},{"uri":"file:///srv/a"}]}}"#;
    // A batch asking `tools/list` and `resources/list` under one id: each answer loses what
    // is hidden of its own kind, whichever kind the id was awaited as.
    let batch = format!("[{tools},{resources}]");
    for kind in [Kind::Tool, Kind::Resource] {
        let out = rules
            .json_body(batch.as_bytes(), &pending_kind("5", kind))
            .unwrap()
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"[{"jsonrpc":"2.0","id":5,"result":{"tools":[{"name":"cache_get"}]}},{"jsonrpc":"2.0","id":5,"result":{"resources":[{"uri":"file:///srv/a"}]}}]"#,
            "{kind:?}"
        );
    }
    // One result holding every kind of list, in any order: all of them lose their hidden
    // entries, spliced where the server wrote them.
    let all = r#"{"jsonrpc":"2.0","id":5,"result":{"prompts":[{"name":"admin_reset"},{"name":"summarize"}],"resources":[{"uri":"file:///secret/k"}],"tools":[{"name":"cache_delete"},{"name":"x"}],"resourceTemplates":[{"uriTemplate":"file:///secret/{n}"},{"uriTemplate":"a://{x}"}]}}"#;
    for p in [pending_kind("5", Kind::Prompt), Vec::new()] {
        let out = rules.json_body(all.as_bytes(), &p).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"jsonrpc":"2.0","id":5,"result":{"prompts":[{"name":"summarize"}],"resources":[],"tools":[{"name":"x"}],"resourceTemplates":[{"uriTemplate":"a://{x}"}]}}"#
        );
    }
}

fn pending_kind(id: &str, kind: Kind) -> Vec<PendingList> {
    vec![PendingList {
        id: id.into(),
        kind,
    }]
}

#[test]
fn lists_lose_hidden_names_under_any_respelling() {
    // What a call is denied as hidden under, a list does not show either.
    let h = Harness::new(r#"{"version":"1","default":"allow","hide":["cache_delete","admin_*"]}"#);
    let rules = h.engine.list_rules();
    // `Secret Tool` and `admin:reset`, which no call can name, go too.
    let list = r#"{"jsonrpc":"2.0","id":4,"result":{"tools":[{"name":"cacheDelete"},{"name":"cache-delete"},{"name":"AdminReset"},{"name":"administer"},{"name":"Secret Tool"},{"name":"admin:reset"},{"name":"cache_get"}]}}"#;
    let out = rules
        .json_body(list.as_bytes(), &pending("4"))
        .unwrap()
        .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"jsonrpc":"2.0","id":4,"result":{"tools":[{"name":"administer"},{"name":"cache_get"}]}}"#
    );
}

#[test]
fn hide_denied_tools_setting() {
    let cfg = format!(r#"{{"policy":{SEED},"hide_denied_tools":true}}"#);
    let h = Harness::new(&cfg);
    let p = pending("4");
    let out = h
        .engine
        .list_rules()
        .json_body(LIST.as_bytes(), &p)
        .unwrap()
        .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"jsonrpc":"2.0","id":4,"result":{"tools":[],"nextCursor":"n2"}}"#
    );
}

fn sse(h: &Harness, chunks: &[&[u8]]) -> (Vec<Vec<u8>>, Vec<u8>) {
    let rules = h.engine.list_rules();
    let mut f = SseFilter::new(pending("4"), 1 << 20);
    let mut outs = Vec::new();
    for c in chunks {
        outs.push(f.push(&rules, c));
    }
    outs.push(f.finish(&rules));
    let all = outs.concat();
    (outs, all)
}

#[test]
fn sse_list_filtering() {
    let h = Harness::new(r#"{"version":"1","default":"allow","hide":["cache_delete"]}"#);
    let progress = "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}\r\n\r\n";
    let stream = format!(": keepalive\n\nid: 7\nevent: message\ndata: {LIST}\n\n{progress}");
    let expected_list = LIST.replace(
        r#",{"name":"cache_delete","description":"x"},{"name":"CACHE_DELETE"}"#,
        "",
    );
    let expected =
        format!(": keepalive\n\nid: 7\nevent: message\ndata: {expected_list}\n\n{progress}");
    // Whole, in 1-byte chunks, and in arbitrary splits: the same output.
    let (_, whole) = sse(&h, &[stream.as_bytes()]);
    assert_eq!(String::from_utf8(whole).unwrap(), expected);
    let bytes: Vec<&[u8]> = stream.as_bytes().chunks(1).collect();
    let (_, one) = sse(&h, &bytes);
    assert_eq!(String::from_utf8(one).unwrap(), expected);
    let (_, split) = sse(&h, &stream.as_bytes().chunks(7).collect::<Vec<_>>());
    assert_eq!(String::from_utf8(split).unwrap(), expected);
    // Events before the list response are passed on as soon as they are complete.
    let early = format!("{progress}data: {LIST}\n\n");
    let (outs, _) = sse(
        &h,
        &[progress.as_bytes(), &early.as_bytes()[progress.len()..]],
    );
    assert_eq!(outs[0], progress.as_bytes());
    // Multi-line data is read whole and written back line by line.
    let at = LIST.find(",\"result\"").unwrap();
    let multi = format!("data: {}\ndata: {}\n\n", &LIST[..at], &LIST[at..]);
    let (_, out) = sse(&h, &[multi.as_bytes()]);
    let out = String::from_utf8(out).unwrap();
    assert!(
        !out.contains("cache_delete") && out.contains("cache_set"),
        "{out}"
    );
    // A second response with the same id is filtered too; events without data pass.
    let twice = format!("data: {LIST}\n\nevent: ping\ndata:\n\ndata: {LIST}\n\n");
    let (_, out) = sse(&h, &[twice.as_bytes()]);
    let out = String::from_utf8(out).unwrap();
    assert!(!out.contains("cache_delete"), "{out}");
    assert_eq!(out.matches("cache_set").count(), 2);
    assert!(out.contains("event: ping\ndata:\n\n"));
}

#[test]
fn sse_fails_closed() {
    let h = Harness::new(r#"{"version":"1","default":"allow","hide":["cache_delete"]}"#);
    for bad in [
        "data: not json\n\n".to_string(),
        format!("data: {}\n\n", LIST.replace("\"id\":4", "\"Id\":4")),
        format!("data: {LIST}trailing\n\n"),
    ] {
        let (_, out) = sse(
            &h,
            &[bad.as_bytes(), format!("data: {LIST}\n\n").as_bytes()],
        );
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains("list_unfilterable") && !out.contains("cache_delete"),
            "{bad} -> {out}"
        );
    }
    let rules = h.engine.list_rules();
    let mut f = SseFilter::new(pending("4"), 64);
    let out = String::from_utf8(f.push(&rules, format!("data: {LIST}\n\n").as_bytes())).unwrap();
    assert!(out.contains("list_unfilterable") && !out.contains("cache_delete"));
    assert!(
        f.push(&rules, b"data: more\n\n").is_empty(),
        "the rest is dropped"
    );
    // With no list awaited (a GET stream, which may never end), an event that cannot be
    // checked is replaced by the error, and the events after it go on.
    let mut f = SseFilter::new(Vec::new(), 1 << 20);
    let listed = format!("data: {}\n\n", LIST.replace("\"id\":4", "\"Id\":4"));
    let out = String::from_utf8(f.push(&rules, listed.as_bytes())).unwrap();
    assert!(out.contains("list_unfilterable") && !out.contains("cache_delete"));
    let note = "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\"}\n\n";
    assert_eq!(f.push(&rules, note.as_bytes()), note.as_bytes());
}

#[test]
fn response_modes() {
    let h = Harness::new(SEED);
    let e = &h.engine;
    assert_eq!(
        e.response_mode(b"200", Some(b"application/json"), None),
        ResponseMode::Json
    );
    assert_eq!(
        e.response_mode(b"200", Some(b"text/event-stream; charset=utf-8"), None),
        ResponseMode::Sse
    );
    assert_eq!(
        e.response_mode(b"200", Some(b"application/json"), Some(b"gzip")),
        ResponseMode::Fail
    );
    assert_eq!(
        e.response_mode(b"200", Some(b"text/html"), None),
        ResponseMode::Fail
    );
    assert_eq!(
        e.response_mode(b"500", Some(b"text/plain"), None),
        ResponseMode::Pass
    );
    assert_eq!(
        e.response_mode(b"200", Some(b"application/json"), Some(b"identity")),
        ResponseMode::Json
    );
    // The 2024-11-05 transport's "Accepted": the listing comes on the GET stream.
    assert_eq!(
        e.response_mode(b"202", Some(b"text/plain"), None),
        ResponseMode::Pass
    );
    assert_eq!(e.response_mode(b"202", None, None), ResponseMode::Pass);
    // Types the TypeScript SDK finds its media type in (`includes`), and charsets the Python
    // SDK would decode the body by.
    for (content_type, mode) in [
        (&b"text/event-streams"[..], ResponseMode::Sse),
        (b"application/json-seq", ResponseMode::Json),
        (b"text/plain; x=application/json", ResponseMode::Json),
        (b"Text/Event-Stream; Charset=\"UTF-8\"", ResponseMode::Sse),
        (b"text/event-stream; charset=utf-16", ResponseMode::Fail),
        (b"application/json; charset=utf-7", ResponseMode::Fail),
    ] {
        assert_eq!(
            e.response_mode(b"200", Some(content_type), None),
            mode,
            "{}",
            String::from_utf8_lossy(content_type)
        );
    }
    assert_eq!(
        e.response_mode(b"202", Some(b"application/json"), None),
        ResponseMode::Json
    );
}

#[test]
fn a_watched_stream_loses_hidden_templates() {
    // The 2024-11-05 transport answers every request on the GET stream, which awaits no list:
    // a templates list there is filtered by its shape, even when it holds no other list.
    let h = Harness::new(RESOURCES);
    let rules = h.engine.list_rules();
    let mut f = SseFilter::new(Vec::new(), 1 << 20);
    let event = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":9,\"result\":{\"resourceTemplates\":[{\"uriTemplate\":\"file:///secret/{n}\"},{\"uriTemplate\":\"a://{x}\"}]}}\n\n";
    let mut out = f.push(&rules, event);
    out.extend(f.finish(&rules));
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":9,\"result\":{\"resourceTemplates\":[{\"uriTemplate\":\"a://{x}\"}]}}\n\n"
    );
}

#[test]
fn watch_modes() {
    let sse: Option<&[u8]> = Some(b"text/event-stream");
    let hiding = Harness::new(r#"{"version":"1","default":"allow","hide":["secret"]}"#);
    let open = Harness::new(SEED);
    for h in [&hiding, &open] {
        assert_eq!(h.engine.watch_mode(sse, None), ResponseMode::Sse);
        assert_eq!(
            h.engine.watch_mode(sse, Some(b"identity")),
            ResponseMode::Sse
        );
    }
    for other in [Some(&b"application/json"[..]), Some(b"text/html"), None] {
        assert_eq!(open.engine.watch_mode(other, None), ResponseMode::Pass);
        assert_eq!(
            open.engine.watch_mode(other, Some(b"gzip")),
            ResponseMode::Pass
        );
        // The TypeScript SDK reads its GET stream as events whatever the type says.
        assert_eq!(hiding.engine.watch_mode(other, None), ResponseMode::Sse);
        assert_eq!(
            hiding.engine.watch_mode(other, Some(b"gzip")),
            ResponseMode::Pass
        );
    }
    // The Python SDK decodes by the charset: text in another one cannot be read here.
    let utf16: Option<&[u8]> = Some(b"text/event-stream; charset=utf-16");
    assert_eq!(hiding.engine.watch_mode(utf16, None), ResponseMode::Fail);
    assert_eq!(open.engine.watch_mode(utf16, None), ResponseMode::Pass);
    // A compressed event stream cannot be watched: withheld only while something is hidden.
    assert_eq!(
        hiding.engine.watch_mode(sse, Some(b"gzip")),
        ResponseMode::Fail
    );
    assert_eq!(
        open.engine.watch_mode(sse, Some(b"gzip")),
        ResponseMode::Pass
    );
}

#[test]
fn a_bom_opening_a_list_stream_hides_nothing_however_it_is_chunked() {
    // A client's UTF-8 decoder drops a BOM however its bytes were chunked; the filter must
    // too, and must not keep the unfiltered line behind one when it rewrites the event.
    let h = Harness::new(r#"{"version":"1","default":"allow","hide":["cache_delete"]}"#);
    let rules = h.engine.list_rules();
    let body = b"\xEF\xBB\xBFdata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"cache_get\"},{\"name\":\"cache_delete\"}]}}\n\n";
    for cut in 0..8 {
        for awaited in [pending("1"), Vec::new()] {
            let mut f = SseFilter::new(awaited.clone(), 1 << 20);
            let (a, b) = body.split_at(cut);
            let mut out = f.push(&rules, a);
            out.extend(f.push(&rules, b));
            out.extend(f.finish(&rules));
            let text = String::from_utf8_lossy(&out);
            assert!(
                !text.contains("cache_delete"),
                "cut at {cut}, awaited {awaited:?}: {text}"
            );
            assert!(
                text.starts_with('\u{feff}') && text.contains("cache_get"),
                "{text}"
            );
        }
    }
    // Bytes that only begin like a BOM are the first line's.
    let mut f = SseFilter::new(pending("1"), 1 << 20);
    let mut out = f.push(&rules, b"\xEF");
    out.extend(f.push(&rules, b"xdata: 1\n\n"));
    out.extend(f.finish(&rules));
    assert_eq!(out, b"\xEFxdata: 1\n\n");
}
