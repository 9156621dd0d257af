//! Any event stream, cut into any chunks: the filter never panics, and no event a client
//! would read as the awaited tools/list response lists a hidden tool or resource (a
//! resources list under the awaited id included); on a watched GET stream (no list
//! awaited, the 2024-11-05 transport) no list does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use toolgate_engine::config::load;
use toolgate_engine::listing::PendingList;
use toolgate_engine::policy::Kind;
use toolgate_engine::ratelimit::MemoryStore;
use toolgate_engine::sse::SseFilter;
use toolgate_engine::Engine;

/// Data fields of the events a WHATWG EventSource client would dispatch.
fn client_events(stream: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(stream);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text).to_string();
    let mut events = Vec::new();
    let mut data: Option<String> = None;
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    for line in normalized.split('\n') {
        if line.is_empty() {
            if let Some(d) = data.take() {
                events.push(d.into_bytes());
            }
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        if field == "data" {
            match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_string()),
            }
        }
    }
    events
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else { return };
    let Ok(config) = load(br#"{"version":"1","default":"allow","hide":["cache_delete"],"resources":{"default":"allow","hide":["file:///secret/*"]}}"#) else { return };
    let store = MemoryStore::new();
    let Ok(engine) = Engine::new(config, "fuzz", &store, [3; 16]) else { return };
    let rules = engine.list_rules();
    let watching = cut & 0x80 != 0;
    let pending = if watching { Vec::new() } else { vec![PendingList { id: "4".into(), kind: Kind::Tool }] };
    let mut f = SseFilter::new(pending, 1 << 16);
    let mut out = Vec::new();
    for chunk in stream.chunks(usize::from(cut & 0x7f).max(1)) {
        out.extend(f.push(&rules, chunk));
    }
    out.extend(f.finish(&rules));
    // What a lenient client would take as the response to id 4 must not list cache_delete.
    for event in client_events(&out) {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&event) else { continue };
        let messages = match &v {
            serde_json::Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        };
        for m in messages {
            let id_matches = watching || m.get("id").is_some_and(|id| id == 4 || id == "4");
            if !id_matches {
                continue;
            }
            if let Some(tools) = m.pointer("/result/tools").and_then(|t| t.as_array()) {
                for t in tools {
                    let name = t.get("name").and_then(|n| n.as_str()).unwrap_or("");
                    assert!(!name.eq_ignore_ascii_case("cache_delete"), "hidden tool passed: {}", String::from_utf8_lossy(&out));
                }
            }
            // Awaited as a tools list or not, no answer lists a hidden resource or template.
            for (array, key) in [("/result/resources", "uri"), ("/result/resourceTemplates", "uriTemplate")] {
                for r in m.pointer(array).and_then(|t| t.as_array()).into_iter().flatten() {
                    let uri = r.get(key).and_then(|n| n.as_str()).unwrap_or("");
                    assert!(!uri.starts_with("file:///secret/"), "hidden resource passed: {}", String::from_utf8_lossy(&out));
                }
            }
        }
    }
});
