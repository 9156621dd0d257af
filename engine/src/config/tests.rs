use super::*;
use crate::condition::Op;
use crate::policy::{Action, DefaultAction, Increment, Scope};
use crate::ratelimit::Window;

const SEED: &str = r#"{"version":"1","default":"deny","tools":{"cache_cas":{"limits":[{"counter":"cache_cas_rate","window":"minute","max":30,"scope":"grant"}]}}}"#;

fn problems(doc: &str) -> Vec<String> {
    match load(doc.as_bytes()) {
        Ok(_) => Vec::new(),
        Err(p) => p.iter().map(ToString::to_string).collect(),
    }
}

fn ok(doc: &str) -> Config {
    load(doc.as_bytes()).unwrap_or_else(|p| panic!("{p:?}"))
}

#[test]
fn seed_policy_loads() {
    let c = ok(SEED);
    assert_eq!(c.policy.tools.default, DefaultAction::Deny);
    assert_eq!(c.settings, Settings::default());
    let (_, t) = c.policy.tools.lookup("cache_cas").unwrap();
    assert_eq!(t.action, Action::Allow);
    assert_eq!(t.limits.len(), 1);
    let l = &t.limits[0];
    assert_eq!(l.max.get(), 30);
    assert_eq!(l.rule, "tools.cache_cas.limits[0]");
    assert_eq!(l.increment, Increment::One);
    let def = c.policy.counter(l.counter).unwrap();
    assert_eq!(
        (def.name.as_str(), def.scope, def.window),
        ("cache_cas_rate", Scope::Grant, Window::Minute)
    );
    assert!(c.policy.tools.lookup("CACHE_CAS").is_some());
    assert!(c.policy.tools.lookup("cache_get").is_none());
}

#[test]
fn the_issue_example_message() {
    let doc = SEED.replace("\"minute\"", "\"minutes\"");
    assert_eq!(
        problems(&doc),
        ["tools.cache_cas.limits[0].window: \"minutes\" is not a window; expected second, minute, hour or day"]
    );
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let doc = r#"{"version":"2","default":"maybe","colour":1,
        "hide":["ok", 3, "bad name", "ok"],
        "tools":{
          "a":{"action":"block","limits":[{"counter":"c","window":"minute","max":0,"scope":"team","extra":1}]},
          "b":{"require":[{"path":"amount","op":"lte","value":5},{"path":"args.x","op":"lt","value":"5"},{"path":"args.x","op":"like","value":1}]},
          "c":{"deny_if":[{"path":"args.x","op":"regex","value":"("},{"path":"args.y","op":"in","value":[]},{"path":"args.z","op":"eq"}]},
          "A":{},
          "d":{"limits":[{"counter":"c","window":"hour","max":1}]}
        }}"#;
    let p = problems(doc);
    let expect = [
        "version: \"2\" is not a supported policy version; expected 1",
        "default: \"maybe\" is not a default; expected allow or deny",
        "colour: unknown field; expected one of version, description, default, hide, all_tools, tools, resources or prompts",
        "tools.a.action: \"block\" is not an action; expected allow, deny or require_approval",
        "tools.a.limits[0].extra: unknown field; expected one of counter, window, max, scope, increment_from or store",
        "tools.a.limits[0].max: 0 is out of range; expected an integer from 1 to 1000000000000000",
        "tools.a.limits[0].scope: \"team\" is not a scope; expected grant, session or global",
        "tools.b.require[0].path: \"amount\" is not an argument path; expected a path into the arguments such as \"args.amount\" or \"args.items.0.id\"",
        "tools.b.require[1].value: \"5\" is not a number; expected a number",
        "tools.b.require[2].op: \"like\" is not an operator; expected eq, neq, in, not_in, lt, lte, gt, gte, regex, contains or exists",
        "tools.c.deny_if[1].value: [] is empty; expected a non-empty list of values",
        "tools.c.deny_if[2].value: missing; expected the value to compare with",
        "tools.A: \"A\" differs from \"a\" only by case; expected names that differ by more than case (they match case-insensitively)",
        "hide[1]: 3 is a number; expected a name, a glob or \"*\"",
        "hide[2]: \"bad name\" is not a tool name or pattern; expected a tool name of 1 to 128 visible ASCII characters (no spaces), or a glob of A-Z a-z 0-9 _ . - with *, or \"*\"",
        "hide[3]: \"ok\" is listed twice; expected each name once",
    ];
    for e in expect {
        assert!(
            p.iter().any(|l| l == e),
            "missing {e:?} in\n{}",
            p.join("\n")
        );
    }
    assert!(
        p.iter()
            .any(|l| l
                .starts_with("tools.c.deny_if[0].value: \"(\" is not a valid regular expression")),
        "{p:?}"
    );
}

#[test]
fn counter_window_clash() {
    let doc = r#"{"version":"1","default":"allow","tools":{
        "a":{"limits":[{"counter":"w","window":"minute","max":5}]},
        "b":{"limits":[{"counter":"w","window":"hour","max":5,"scope":"global"}]}}}"#;
    assert_eq!(
        problems(doc),
        ["tools.b.limits[0].window: \"hour\" differs from the window \"minute\" counter \"w\" has at tools.a.limits[0].window; expected one window for every limit of a counter"]
    );
}

/// Repeats are found wherever they stand among thousands of names (names are looked up in a
/// sorted index, not scanned), and every other name still loads.
#[test]
fn repeats_are_found_among_thousands_of_names() {
    let n = 3000;
    let tool = |i: usize| {
        format!(r#""t_{i}":{{"limits":[{{"counter":"c_{i}","window":"minute","max":5}}]}}"#)
    };
    let mut tools: Vec<String> = (0..n).map(tool).collect();
    // Tools listed later, repeating names far before them: by case, a counter's window.
    tools.push(r#""T_17":{}"#.into());
    tools.push(r#""late":{"limits":[{"counter":"c_2024","window":"hour","max":5}]}"#.into());
    let hide: Vec<String> = (0..n)
        .map(|i| format!(r#""h_{i}""#))
        .chain([r#""H_5""#.into(), r#""t_9""#.into()])
        .collect();
    let doc = format!(
        r#"{{"version":"1","default":"deny","hide":[{}],"tools":{{{}}}}}"#,
        hide.join(","),
        tools.join(",")
    );
    assert_eq!(
        problems(&doc),
        [
            "tools.T_17: \"T_17\" differs from \"t_17\" only by case; expected names that differ by more than case (they match case-insensitively)".into(),
            "tools.late.limits[0].window: \"hour\" differs from the window \"minute\" counter \"c_2024\" has at tools.t_2024.limits[0].window; expected one window for every limit of a counter".into(),
            format!("hide[{n}]: \"H_5\" is listed twice; expected each name once"),
        ]
    );
    // Without the repeats: every tool and hidden name is an entry, one counter per tool, and
    // a hidden name with rules (t_9) keeps its rules.
    tools.truncate(n);
    let hide: Vec<String> = (0..n)
        .map(|i| format!(r#""h_{i}""#))
        .chain([r#""t_9""#.into()])
        .collect();
    let c = ok(&format!(
        r#"{{"version":"1","default":"deny","hide":[{}],"tools":{{{}}}}}"#,
        hide.join(","),
        tools.join(",")
    ));
    assert_eq!(c.policy.tools.entries.len(), 2 * n);
    assert_eq!(c.policy.counters.len(), n);
    let (_, t9) = c.policy.tools.lookup("T_9").unwrap();
    assert_eq!(t9.limits.len(), 1);
    let (_, last) = c.policy.tools.lookup(&format!("t_{}", n - 1)).unwrap();
    assert_eq!(
        c.policy.counters[last.limits[0].counter.0].name,
        format!("c_{}", n - 1)
    );
    // Hidden names are found in any case among thousands, and only they are hidden.
    let tools = &c.policy.tools;
    for hidden in ["h_0", "H_1234", "h_2999", "T_9"] {
        assert!(tools.is_hidden(hidden), "{hidden}");
    }
    for shown in ["h_3000", "h_", "t_10", "h_12345"] {
        assert!(!tools.is_hidden(shown), "{shown}");
    }
}

#[test]
fn shared_counters_share_an_id_per_scope() {
    let c = ok(r#"{"version":"1","default":"allow",
        "all_tools":{"limits":[{"counter":"calls","window":"second","max":100,"scope":"global"}]},
        "tools":{
        "a":{"limits":[{"counter":"writes","window":"hour","max":10}]},
        "b":{"limits":[{"counter":"writes","window":"hour","max":20},{"counter":"writes","window":"hour","max":3,"scope":"session","increment_from":"args.n"}]}}}"#);
    let a = c.policy.tools.lookup("a").unwrap().1;
    let b = c.policy.tools.lookup("b").unwrap().1;
    assert_eq!(a.limits[0].counter, b.limits[0].counter);
    assert_ne!(b.limits[0].counter, b.limits[1].counter);
    assert_eq!(c.policy.counters.len(), 3);
    assert_eq!(c.policy.all_tools.len(), 1);
    assert_eq!(c.policy.all_tools[0].rule, "all_tools.limits[0]");
    assert!(matches!(&b.limits[1].increment, Increment::From(p) if p.as_str() == "args.n"));
    assert!(c.policy.needs_grant());
}

#[test]
fn tools_with_every_field() {
    let c = ok(
        r#"{"version":"1","description":"d","default":"allow","hide":["secret_tool"],"tools":{
        "db.query":{"description":"x","action":"allow","reason":"Only SELECT","require":[{"path":"args.sql","op":"regex","value":"^SELECT"}],
                  "deny_if":[{"path":"args.sql","op":"contains","value":"DROP"},{"path":"args.force","op":"exists"}]},
        "rm":{"action":"deny","reason":"never"},
        "pay":{"action":"require_approval"},
        "secret_tool":{}}}"#,
    );
    let q = c.policy.tools.lookup("DB.Query").unwrap().1;
    assert_eq!(q.reason.as_deref(), Some("Only SELECT"));
    assert!(matches!(q.require[0].op, Op::Regex(_)));
    assert!(matches!(q.deny_if[1].op, Op::Exists(true)));
    assert_eq!(q.deny_if[0].rule, "tools[\"db.query\"].deny_if[0]");
    assert_eq!(c.policy.tools.lookup("rm").unwrap().1.action, Action::Deny);
    assert_eq!(
        c.policy.tools.lookup("pay").unwrap().1.action,
        Action::RequireApproval
    );
    let s = c.policy.tools.lookup("secret_tool").unwrap().1;
    assert!(c.policy.tools.is_hidden("secret_tool") && s.listed);
    assert!(!c.policy.tools.hide_all);
}

#[test]
fn hide_star_and_hidden_only_names() {
    let c = ok(r#"{"version":"1","default":"allow","hide":["*","drop_all"]}"#);
    assert!(c.policy.tools.hide_all);
    let d = c.policy.tools.lookup("drop_all").unwrap().1;
    assert!(c.policy.tools.is_hidden("drop_all") && !d.listed);
}

#[test]
fn settings_form() {
    let c = ok(&format!(
        r#"{{"policy":{SEED},"mode":"shadow","denial_style":"error","denial_error_code":-32099,
            "max_body_bytes":4096,"max_json_depth":8,"max_batch_size":2,
            "grant_sources":[{{"header":"X-User"}},{{"property":["metadata","filter_metadata","envoy.filters.http.jwt_authn","payload","sub"]}},{{"downstream_address":true}}],
            "session_header":"x-session","counter_slots":16,"cas_retries":5,"key_namespace":"team-a","hash_salt":"s3cret",
            "pause_on_request_headers":true}}"#
    ));
    let s = &c.settings;
    assert_eq!(s.mode, Mode::Shadow);
    assert_eq!(s.denial_style, DenialStyle::Error);
    assert_eq!(s.denial_error_code, -32099);
    assert_eq!(
        (s.max_body_bytes, s.max_json_depth, s.max_batch_size),
        (4096, 8, 2)
    );
    assert_eq!(s.grant_sources[0], GrantSource::Header("x-user".into()));
    assert!(matches!(&s.grant_sources[1], GrantSource::Property(p) if p.len() == 5));
    assert_eq!(s.grant_sources[2], GrantSource::DownstreamAddress);
    assert_eq!(s.session_header, "x-session");
    assert_eq!((s.counter_slots.get(), s.cas_retries.get()), (16, 5));
    assert_eq!(s.key_namespace.as_deref(), Some("team-a"));
    assert_eq!(s.hash_salt.as_deref(), Some("s3cret"));
    assert!(s.pause_on_request_headers);
}

#[test]
fn settings_problems() {
    let p = problems(
        r#"{"mode":"audit","max_body_bytes":-1,"grant_sources":[{"header":"bad header"},{"header":"a","downstream_address":true},{"cookie":"x"}],
            "counter_slots":0,"hash_salt":"","session_header":7,"verbose":true}"#,
    );
    let expect = [
        "mode: \"audit\" is not a mode; expected enforce or shadow",
        "max_body_bytes: -1 is out of range; expected an integer from 1 to 67108864",
        "grant_sources[0].header: \"bad header\" is not a header name; expected an HTTP header name",
        "grant_sources[2].cookie: unknown field; expected one of header, property or downstream_address",
        "counter_slots: 0 is out of range; expected an integer from 1 to 65536",
        "hash_salt: \"\" is empty; expected a non-empty secret string",
        "session_header: 7 is a number; expected an HTTP header name",
        "verbose: unknown field; expected one of policy, mode, denial_style, denial_error_code, max_body_bytes, max_json_depth, max_batch_size, grant_sources, session_header, counter_slots, cas_retries, key_namespace, hash_salt, pause_on_request_headers, hide_denied_tools, max_response_bytes or rate_limit_service",
        "policy: missing; expected a PolicyLayer policy document (an object with version, default, tools)",
    ];
    for e in expect {
        assert!(
            p.iter().any(|l| l == e),
            "missing {e:?} in\n{}",
            p.join("\n")
        );
    }
    assert!(
        p.iter().any(|l| l.starts_with("grant_sources[1]: ")),
        "{p:?}"
    );
}

#[test]
fn malformed_documents() {
    assert_eq!(
        problems("{\"version\":\"1\",\"version\":\"1\"}"),
        ["configuration: duplicate object key at byte 15; expected a JSON object: a PolicyLayer policy, or settings with a \"policy\""]
    );
    assert_eq!(
        problems("[]"),
        ["configuration: [] is an array; expected a JSON object: a PolicyLayer policy, or settings with a \"policy\""]
    );
    assert_eq!(problems("").len(), 1);
    assert_eq!(
        problems(r#"{"version":"1"}"#),
        ["default: missing; expected allow or deny"]
    );
    assert_eq!(
        problems(r#"{"version":"1","default":"allow","tools":{"bad tool":{}}}"#),
        ["tools[\"bad tool\"]: \"bad tool\" is not a tool name or pattern; expected a tool name of 1 to 128 visible ASCII characters (no spaces), or a glob of A-Z a-z 0-9 _ . - with *"]
    );
    // Resource URIs are written as the server names them; rules also answer to the
    // readings requests are judged under.
    for uri in [
        "https://h.example:443/x",
        "FILE:///etc/*",
        "postgres://user@host/db",
        "db://Prod/t",
        "https://h.example/x",
        "notes://secret?v=1",
    ] {
        let doc = format!(
            r#"{{"version":"1","default":"allow","resources":{{"hide":["{uri}"],"rules":{{"{uri}":{{}}}}}}}}"#
        );
        assert!(problems(&doc).is_empty(), "{uri}");
    }
    assert_eq!(
        problems(r#"{"version":"1","default":"allow","resources":{"rules":{"file:///a b":{}}}}"#)
            .len(),
        1
    );
}

#[test]
fn two_resource_rules_for_one_resource_are_refused() {
    // Keys servers read as one URI would meet a request by its spelling alone.
    for (a, b) in [
        ("file:///srv/secret.txt", "file:///srv/%73ecret.txt"),
        (
            "file:///srv/%73ecret.txt",
            "file://localhost/srv/secret.txt",
        ),
        ("FILE:///srv/x", "file:///srv/./x"),
        ("users://7/profile", "users://007/profile"),
        // A server opening the path reads `docs/` as `docs`.
        ("file:///srv/docs/", "file:///srv/docs"),
    ] {
        let doc = format!(
            r#"{{"version":"1","default":"allow","resources":{{"rules":{{"{a}":{{}},"{b}":{{"action":"deny"}}}}}}}}"#
        );
        let p = problems(&doc);
        assert_eq!(p.len(), 1, "{a} {b}: {p:?}");
        assert!(p[0].ends_with("; expected one rule per resource"), "{p:?}");
    }
    // A rule for the URI without its query is another resource's: the more specific rule.
    ok(
        r#"{"version":"1","default":"allow","resources":{"rules":{"db://t":{},"db://t?mode=admin":{"action":"deny"}}}}"#,
    );
}

#[test]
fn two_globs_matching_alike_are_refused() {
    // `admin**` is `admin*`; to a server respelling names, `admin-*` is `admin_*`: which of
    // two such keys met a name depended on their order.
    for (a, b) in [
        ("admin*", "admin**"),
        ("admin_*", "admin-*"),
        ("a*b", "A**B"),
    ] {
        let doc = format!(
            r#"{{"version":"1","default":"allow","tools":{{"{a}":{{}},"{b}":{{"action":"deny"}}}}}}"#
        );
        let p = problems(&doc);
        assert_eq!(p.len(), 1, "{a} {b}: {p:?}");
        assert!(p[0].ends_with("; expected one rule per glob"), "{p:?}");
    }
    ok(r#"{"version":"1","default":"allow","tools":{"admin*":{},"admin_*":{"action":"deny"}}}"#);
    let doc = r#"{"version":"1","default":"allow","resources":{"rules":{"file:///a/*":{},"file:///a/**":{"action":"deny"}}}}"#;
    assert_eq!(problems(doc).len(), 1);
}
