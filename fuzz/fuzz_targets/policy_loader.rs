//! Any configuration document: loading never panics, every problem names a path, and a
//! loaded policy builds an engine and decides a call.
#![no_main]

use libfuzzer_sys::fuzz_target;
use toolgate_engine::config::load;
use toolgate_engine::json::Validator;
use toolgate_engine::ratelimit::{ManualClock, MemoryStore};
use toolgate_engine::{Engine, Head, NoAttributes};

fuzz_target!(|data: &[u8]| {
    match load(data) {
        Err(problems) => {
            assert!(!problems.is_empty());
            for p in problems {
                assert!(!p.path.is_empty() && !p.expected.is_empty());
            }
        }
        Ok(config) => {
            let store = MemoryStore::new();
            let Ok(engine) = Engine::new(config, "fuzz", &store, [2; 16]) else { return };
            let headers: &[(&[u8], &[u8])] = &[(b"content-type", b"application/json")];
            if let Head::Inspect(info) = engine.inspect_head(b"POST", headers, true, &NoAttributes) {
                let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":1,"args":{"y":"z"}}}}"#;
                let _ = engine.decide(&info, body, &store, &ManualClock::at_secs(1), &mut Validator::new());
            }
        }
    }
});
