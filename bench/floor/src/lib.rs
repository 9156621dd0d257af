//! The floor module: what any Rust proxy-wasm filter that inspects a request body pays in
//! Envoy before doing any work of its own. It holds the request (headers paused, as Toolgate
//! does with `allow_on_headers_stop_iteration`), buffers the body to its end, reads it once
//! into the VM and lets it go. It decides nothing, so the gap between it and Toolgate is
//! Toolgate's own work.
//!
//! Configured with `host-calls`, it also makes the host calls Toolgate makes for an allowed,
//! counted call, with fixed arguments and no decision: it reads the request headers, the
//! clock and a shared-data counter, writes the counter back with its CAS token, counts a
//! metric, records a filter-state decision, and adds `RateLimit-Policy` and `RateLimit` to
//! the response. The gap between the two configurations is what those calls cost in Envoy;
//! the gap between this one and Toolgate is Toolgate's decision and glue. `host-calls
//! without shared,response` (any of headers, clock, shared, metric, property, response)
//! leaves those out, to see what each costs (`bench/instructions.py --host-calls`). `read`
//! leaves out only the counter's read where it can: the write then carries the CAS token
//! this worker's last write is predicted to have got, and the counter is read only when that
//! write fails (what skipping the read would save a filter whose worker makes every write).

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, MetricType};
use std::hint::black_box;

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Floor::default()) });
}}

extern "C" {
    fn proxy_get_header_map_pairs(kind: u32, data: *mut *mut u8, size: *mut usize) -> u32;
}

/// The request headers in the host's pair encoding, as Toolgate reads them: one buffer,
/// not decoded into owned strings (the SDK's `get_http_request_headers_bytes` would add an
/// allocation per name and value that Toolgate does not make).
fn request_header_bytes() -> Vec<u8> {
    let (mut data, mut size) = (std::ptr::null_mut(), 0usize);
    // SAFETY: out-pointers valid for the call; the host allocates `data` through the
    // module's `proxy_on_memory_allocate` (the SDK's global allocator), so the Vec owns it.
    unsafe {
        if proxy_get_header_map_pairs(0, &mut data, &mut size) != 0 || data.is_null() {
            return Vec::new();
        }
        Vec::from_raw_parts(data, size, size)
    }
}

/// The counter key: as long as Toolgate's for the seed policy.
const KEY: &str = "tg/toolgate/cache_cas_rate/grant/60/1024/517";

/// The host calls the floor can make, by name in its configuration; a set of them is a bit
/// mask, copied into each stream (an allocation per request would skew what it measures).
const CALLS: [&str; 7] = [
    "headers", "clock", "shared", "metric", "property", "response", "read",
];

fn call_bit(name: &str) -> u8 {
    CALLS.iter().position(|c| *c == name).map_or(0, |i| 1 << i)
}

#[derive(Default)]
struct Floor {
    /// The metric id, when making Toolgate's host calls.
    host_calls: Option<u32>,
    /// Host calls left out (`host-calls without headers,clock,shared,metric,property,response,read`),
    /// to see what each costs: bits of [`CALLS`].
    without: u8,
}

impl Context for Floor {}

impl RootContext for Floor {
    fn on_configure(&mut self, _: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        let text = String::from_utf8_lossy(&config);
        let mut words = text.split_whitespace();
        if words.next() == Some("host-calls") {
            if words.next() == Some("without") {
                self.without = words
                    .next()
                    .unwrap_or("")
                    .split(',')
                    .fold(0, |set, name| set | call_bit(name));
            }
            let id = hostcalls::define_metric(MetricType::Counter, "floor.allowed");
            self.host_calls = Some(id.unwrap_or(0));
            // The counter exists before any request, as Toolgate's slots do.
            let _ = self.set_shared_data(KEY, Some(&[0u8; 24]), None);
        }
        true
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream {
            host_calls: self.host_calls,
            without: self.without,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

thread_local! {
    /// The CAS token the counter's last write from this worker is predicted to hold.
    static PREDICTED: std::cell::Cell<Option<u32>> = const { std::cell::Cell::new(None) };
}

/// Writes the counter with the predicted token, without reading it; false when there is no
/// prediction or the write found another token (then the caller reads and writes).
fn write_with_predicted_token() -> bool {
    let Some(token) = PREDICTED.with(|p| p.get()) else {
        return false;
    };
    let written = hostcalls::set_shared_data(KEY, Some(&[1u8; 24]), Some(token)).is_ok();
    PREDICTED.with(|p| p.set(if written { token.checked_add(1) } else { None }));
    written
}

struct Stream {
    host_calls: Option<u32>,
    without: u8,
}

impl Stream {
    fn makes(&self, call: &str) -> bool {
        self.host_calls.is_some() && self.without & call_bit(call) == 0
    }
}

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _: usize, end_of_stream: bool) -> Action {
        if self.makes("headers") {
            black_box(request_header_bytes());
        }
        if end_of_stream {
            Action::Continue
        } else {
            Action::Pause
        }
    }

    fn on_http_request_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Pause;
        }
        // Read once, as any inspecting filter must; what is read is not used.
        black_box(self.get_http_request_body(0, size));
        if self.makes("clock") {
            black_box(self.get_current_time());
        }
        let predicts = !self.makes("read");
        if self.makes("shared") && !(predicts && write_with_predicted_token()) {
            let (value, cas) = self.get_shared_data(KEY);
            let mut value = value.unwrap_or_default();
            if let Some(b) = value.first_mut() {
                *b = b.wrapping_add(1);
            }
            if predicts {
                // Envoy hands out CAS tokens from one counter: if nothing else writes, this
                // write gets the token after the one it replaces.
                PREDICTED.with(|p| p.set(cas.and_then(|c| c.checked_add(1))));
            }
            let _ = self.set_shared_data(KEY, Some(&value), cas);
        }
        if let (Some(metric), true) = (self.host_calls, self.makes("metric")) {
            let _ = hostcalls::increment_metric(metric, 1);
        }
        if self.makes("property") {
            self.set_property(vec!["toolgate", "decision"], Some(b"allowed"));
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        if self.makes("response") {
            self.add_http_response_header(
                "ratelimit-policy",
                "\"cache_cas_rate\";q=1000000000;w=60",
            );
            self.add_http_response_header("ratelimit", "\"cache_cas_rate\";r=999999987;t=17");
        }
        Action::Continue
    }
}
