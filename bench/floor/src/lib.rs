//! The floor module: what any Rust proxy-wasm filter that inspects a request body pays in
//! Envoy before doing any work of its own. It holds the request (headers paused, as Toolgate
//! does with `allow_on_headers_stop_iteration`), buffers the body to its end, reads it once
//! into the VM and lets it go. It decides nothing, so the gap between it and Toolgate is
//! Toolgate's own work.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use std::hint::black_box;

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Floor) });
}}

struct Floor;

impl Context for Floor {}

impl RootContext for Floor {
    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream;

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _: usize, end_of_stream: bool) -> Action {
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
        Action::Continue
    }
}
