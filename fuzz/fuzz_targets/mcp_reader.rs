//! Any request body through the whole decision: never a panic, and every outcome is
//! consistent (a reply is valid JSON; a forwarded request holds no denied call).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use toolgate_engine::config::load;
use toolgate_engine::json::Validator;
use toolgate_engine::outcome::{CallOutcome, Verdict};
use toolgate_engine::ratelimit::{ManualClock, MemoryStore};
use toolgate_engine::{Engine, Head, NoAttributes};

const POLICY: &str = r#"{"policy":{"version":"1","default":"deny","hide":["cache_delete"],
 "all_tools":{"limits":[{"counter":"all","window":"minute","max":1000000}]},
 "tools":{"cache_cas":{"limits":[{"counter":"cas","window":"minute","max":3}]},
   "cache_*":{"deny_if":[{"path":"args.key","op":"regex","value":"^secret"}]},
   "spend":{"require":[{"path":"args.amount","op":"lte","value":100}],
            "limits":[{"counter":"money","window":"day","max":1000,"increment_from":"args.amount"}]}},
 "resources":{"hide":["file:///secret/*"],"rules":{"file:///etc/*":{"action":"deny"}}},
 "prompts":{"default":"deny","rules":{"ok":{}}}},
 "max_json_depth":32,"max_batch_size":8,"counter_slots":8}"#;

struct Fixture {
    engine: Engine,
    store: MemoryStore,
}

static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();

fn fixture() -> Option<&'static Fixture> {
    FIXTURE
        .get_or_init(|| {
            let config = load(POLICY.as_bytes()).ok()?;
            let store = MemoryStore::new();
            let engine = Engine::new(config, "fuzz", &store, [1; 16]).ok()?;
            Some(Fixture { engine, store })
        })
        .as_ref()
}

fuzz_target!(|data: &[u8]| {
    let Some(Fixture { engine, store }) = fixture() else {
        panic!("the fuzz policy must load");
    };
    let clock = ManualClock::at_secs(1_800_000_000);
    let plain: &[(&[u8], &[u8])] = &[(b"content-type", b"application/json"), (b"authorization", b"k")];
    // The same body under the 2026-07-28 headers that mirror it (checked against any body).
    let mirrored: &[(&[u8], &[u8])] = &[
        (b"content-type", b"application/json"),
        (b"authorization", b"k"),
        (b"mcp-method", b"tools/call"),
        (b"mcp-name", b"cache_get"),
        (b"mcp-param-key", b"=?base64?c2VjcmV0?="),
        (b"mcp-param-amount", b"50"),
    ];
    let mut v = Validator::new();
    // Each head twice: the second run sees the counters the first one moved.
    for headers in [plain, plain, mirrored, mirrored] {
        let Head::Inspect(info) = engine.inspect_head(b"POST", headers, true, &NoAttributes) else {
            panic!("a JSON POST must be inspected");
        };
        let o = engine.decide(&info, data, store, &clock, &mut v);
        match &o.verdict {
            Verdict::Respond(r) => {
                assert!(serde_json::from_str::<serde_json::Value>(&r.body).is_ok(), "reply is not JSON: {}", r.body);
                assert!(matches!(r.status, 200 | 400 | 413 | 415));
            }
            Verdict::Forward(_) => {
                assert!(o.report.rejection.is_none());
                assert!(o.report.calls.iter().all(|c| c.outcome == CallOutcome::Allowed));
            }
            Verdict::Consult(_) => panic!("no limit of the fuzz policy names a rate limit service"),
        }
    }
});
