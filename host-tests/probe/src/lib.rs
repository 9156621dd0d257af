//! The probe: a proxy-wasm module whose every behaviour is chosen by the test.
//!
//! - WASI environment `PROBE_INIT=shared_data`: calls a hostcall during `_initialize`.
//! - Plugin configuration, `;`-separated: `reject`, `trap_configure`, `init:KEY`,
//!   `tick:MS`, `queue:NAME`, `vm_start_false`.
//! - Request header `x-probe`, `;`-separated commands run in `on_http_request_headers`
//!   (see `Probe::command`); results go to filter state `probe.*`.
//! - `x-probe-body`: `buffer`, `echo`, `replace:TEXT`, `reply_at_end:STATUS`,
//!   `header_after_continue`.
//! - `x-probe-trailers`: `pause`.
//! - `x-probe-response`: `upper`, `header`, `pause_headers`, `reply:STATUS`, `buffer`.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType, Status};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    if std::env::var("PROBE_INIT").as_deref() == Ok("shared_data") {
        // Not allowed during _initialize: the host must trap.
        let _ = hostcalls::get_shared_data("init");
    }
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

#[derive(Default)]
struct Root {
    config: String,
    queue: Option<u32>,
}

fn log(level: LogLevel, message: &str) {
    let _ = hostcalls::log(level, message);
}

fn cas_increment(key: &str) -> u64 {
    loop {
        let (value, cas) = hostcalls::get_shared_data(key).unwrap();
        let current: u64 = value
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let next = (current + 1).to_string();
        match hostcalls::set_shared_data(key, Some(next.as_bytes()), cas) {
            Ok(()) => return current + 1,
            Err(Status::CasMismatch) => continue,
            Err(other) => panic!("set_shared_data: {other:?}"),
        }
    }
}

impl Context for Root {
    fn on_done(&mut self) -> bool {
        true
    }
}

impl RootContext for Root {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        let vm_config = self.get_vm_configuration().unwrap_or_default();
        log(
            LogLevel::Info,
            &format!("probe: vm_start {}", String::from_utf8_lossy(&vm_config)),
        );
        !String::from_utf8_lossy(&vm_config).contains("vm_start_false")
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self
            .get_plugin_configuration()
            .map(|c| String::from_utf8_lossy(&c).into_owned())
            .unwrap_or_default();
        self.config = config.clone();
        for item in config.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, arg) = item.split_once(':').unwrap_or((item, ""));
            match name {
                "reject" => {
                    log(LogLevel::Error, "probe: configuration rejected");
                    return false;
                }
                "trap_configure" => panic!("probe: trap in on_configure"),
                "init" => {
                    hostcalls::set_shared_data(arg, Some(b"0"), None).unwrap();
                }
                "tick" => self.set_tick_period(Duration::from_millis(arg.parse().unwrap())),
                "queue" => self.queue = Some(hostcalls::register_shared_queue(arg).unwrap()),
                _ => {}
            }
        }
        log(LogLevel::Info, "probe: configured");
        true
    }

    fn on_tick(&mut self) {
        let n = cas_increment("ticks");
        log(LogLevel::Info, &format!("probe: tick {n}"));
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        while let Ok(Some(item)) = hostcalls::dequeue_shared_queue(queue_id) {
            log(
                LogLevel::Info,
                &format!("probe: queue item {}", String::from_utf8_lossy(&item)),
            );
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Probe {
            id: context_id,
            ..Probe::default()
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

#[derive(Default)]
struct Probe {
    id: u32,
    body: String,
    trailers: String,
    response: String,
    pending: Option<&'static str>,
}

impl Probe {
    fn state(&self, name: &str, value: &[u8]) {
        hostcalls::set_property(vec![&format!("probe.{name}")], Some(value)).unwrap();
    }

    /// Runs one `x-probe` command; `Some(action)` ends the header callback with it.
    fn command(&mut self, name: &str, arg: &str) -> Option<Action> {
        match name {
            "pause" => return Some(Action::Pause),
            "trap" => panic!("probe: trap requested"),
            "reply" => {
                let status = arg.parse().unwrap_or(403);
                self.send_http_response(
                    status,
                    vec![("x-probe-reply", "1")],
                    Some(b"denied by probe"),
                );
                return Some(Action::Pause);
            }
            "cas" => {
                let n = cas_increment(arg);
                self.state("cas", n.to_string().as_bytes());
            }
            "set" => {
                // set:KEY=VALUE@CAS
                let (key, rest) = arg.split_once('=').unwrap();
                let (value, cas) = rest.split_once('@').unwrap_or((rest, "0"));
                let cas: u32 = cas.parse().unwrap();
                let result = hostcalls::set_shared_data(
                    key,
                    Some(value.as_bytes()),
                    (cas != 0).then_some(cas),
                );
                self.state("set", format!("{result:?}").as_bytes());
            }
            "get" => {
                let (value, cas) = hostcalls::get_shared_data(arg).unwrap();
                let text = match (value, cas) {
                    (None, None) => "not_found".to_string(),
                    (v, c) => format!(
                        "{}@{}",
                        String::from_utf8_lossy(&v.unwrap_or_default()),
                        c.unwrap_or(0)
                    ),
                };
                self.state("get", text.as_bytes());
            }
            "prop" => {
                let path: Vec<&str> = arg.split('.').collect();
                let value = self.get_property(path);
                self.state("prop", &value.unwrap_or_else(|| b"<none>".to_vec()));
            }
            "setprop" => {
                let (key, value) = arg.split_once('=').unwrap();
                self.set_property(vec![key], Some(value.as_bytes()));
            }
            "metric" => {
                let id = hostcalls::define_metric(MetricType::Counter, arg).unwrap();
                hostcalls::increment_metric(id, 1).unwrap();
                let bad = hostcalls::increment_metric(id, 0);
                self.state("metric_zero", format!("{bad:?}").as_bytes());
                let value = hostcalls::get_metric(id).unwrap();
                self.state("metric", value.to_string().as_bytes());
            }
            "gauge" => {
                let (name, value) = arg.split_once('=').unwrap();
                let id = hostcalls::define_metric(MetricType::Gauge, name).unwrap();
                hostcalls::record_metric(id, value.parse().unwrap()).unwrap();
                hostcalls::increment_metric(id, -1).unwrap();
            }
            "hist" => {
                let (name, value) = arg.split_once('=').unwrap();
                let id = hostcalls::define_metric(MetricType::Histogram, name).unwrap();
                hostcalls::record_metric(id, value.parse().unwrap()).unwrap();
                let get = hostcalls::get_metric(id);
                self.state("hist_get", format!("{get:?}").as_bytes());
            }
            "log" => {
                for level in [
                    LogLevel::Trace,
                    LogLevel::Debug,
                    LogLevel::Info,
                    LogLevel::Warn,
                    LogLevel::Error,
                    LogLevel::Critical,
                ] {
                    log(level, &format!("probe: {level:?}"));
                }
                println!("probe: stdout line");
                eprintln!("probe: stderr line");
            }
            "level" => {
                let level = hostcalls::get_log_level().unwrap();
                self.state("level", format!("{level:?}").as_bytes());
            }
            "time" => {
                let now = self.get_current_time();
                let nanos = now
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos();
                self.state("time", nanos.to_string().as_bytes());
                let system = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos();
                self.state("wasi_time", system.to_string().as_bytes());
                let mut random = std::collections::hash_map::RandomState::new();
                let _ = &mut random;
                let mut bytes = [0u8; 8];
                // std's HashMap seeds come from random_get; read the clock and seeds only.
                bytes.copy_from_slice(&(system as u64).to_le_bytes());
            }
            "header" => {
                let value = self.get_http_request_header(arg);
                self.state(
                    "header",
                    value.unwrap_or_else(|| "<none>".into()).as_bytes(),
                );
            }
            "header_bytes" => {
                let value = self.get_http_request_header_bytes(arg);
                self.state("header", &value.unwrap_or_default());
            }
            "pairs" => {
                let pairs: Vec<String> = self
                    .get_http_request_headers()
                    .into_iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                self.state("pairs", pairs.join("\n").as_bytes());
            }
            "add" => {
                let (k, v) = arg.split_once('=').unwrap();
                self.add_http_request_header(k, v);
            }
            "replace" => {
                let (k, v) = arg.split_once('=').unwrap();
                self.set_http_request_header(k, Some(v));
            }
            "remove" => self.set_http_request_header(arg, None),
            "callout" => {
                let token = self
                    .dispatch_http_call(
                        "authz",
                        vec![
                            (":method", "POST"),
                            (":path", "/check"),
                            (":authority", "authz"),
                        ],
                        Some(b"check me"),
                        vec![],
                        Duration::from_millis(250),
                    )
                    .unwrap();
                self.state("token", token.to_string().as_bytes());
                self.pending = Some("http");
                return Some(Action::Pause);
            }
            "callout_unknown" => {
                let result = self.dispatch_http_call(
                    "nowhere",
                    vec![(":method", "GET"), (":path", "/"), (":authority", "x")],
                    None,
                    vec![],
                    Duration::from_secs(1),
                );
                self.state("callout", format!("{result:?}").as_bytes());
            }
            "grpc" => {
                let token = self
                    .dispatch_grpc_call(
                        "authz",
                        "probe.Auth",
                        "Check",
                        vec![("k", b"v")],
                        Some(b"req"),
                        Duration::from_secs(1),
                    )
                    .unwrap();
                self.state("token", token.to_string().as_bytes());
                self.pending = Some("grpc");
                return Some(Action::Pause);
            }
            "grow" => {
                let n: usize = arg.parse().unwrap();
                let block = vec![1u8; n];
                std::mem::forget(block);
            }
            "enqueue" => {
                let (queue, item) = arg.split_once('=').unwrap();
                let id = hostcalls::resolve_shared_queue("", queue).unwrap().unwrap();
                hostcalls::enqueue_shared_queue(id, Some(item.as_bytes())).unwrap();
            }
            "resume_now" => {
                // Resume from inside the callback, then pause: the host applies the resume
                // after the callback returned.
                self.resume_http_request();
                return Some(Action::Pause);
            }
            _ => {}
        }
        None
    }
}

impl Context for Probe {
    fn on_http_call_response(
        &mut self,
        _token: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let status = self.get_http_call_response_header(":status");
        let body = self
            .get_http_call_response_body(0, body_size)
            .unwrap_or_default();
        self.state("callout_body", &body);
        self.state("callout_headers", num_headers.to_string().as_bytes());
        match status.as_deref() {
            Some("200") => self.resume_http_request(),
            Some(other) => {
                let status = format!("callout said {other}");
                self.send_http_response(403, vec![], Some(status.as_bytes()));
            }
            None => {
                let (code, message) = hostcalls::get_grpc_status().unwrap();
                let text = format!("callout failed {code} {}", message.unwrap_or_default());
                self.send_http_response(502, vec![], Some(text.as_bytes()));
            }
        }
    }

    fn on_grpc_call_response(&mut self, _token: u32, status_code: u32, response_size: usize) {
        if status_code == 0 {
            let message = self
                .get_grpc_call_response_body(0, response_size)
                .unwrap_or_default();
            self.state("grpc_message", &message);
            self.resume_http_request();
        } else {
            let (code, message) = hostcalls::get_grpc_status().unwrap();
            let text = format!("grpc {code} {}", message.unwrap_or_default());
            self.send_http_response(403, vec![], Some(text.as_bytes()));
        }
    }

    fn on_done(&mut self) -> bool {
        log(LogLevel::Debug, &format!("probe: on_done {}", self.id));
        true
    }
}

impl HttpContext for Probe {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.body = self
            .get_http_request_header("x-probe-body")
            .unwrap_or_default();
        self.trailers = self
            .get_http_request_header("x-probe-trailers")
            .unwrap_or_default();
        self.response = self
            .get_http_request_header("x-probe-response")
            .unwrap_or_default();
        let commands = self.get_http_request_header("x-probe").unwrap_or_default();
        for item in commands.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, arg) = item.split_once(':').unwrap_or((item, ""));
            if let Some(action) = self.command(name, arg) {
                return action;
            }
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let mode = self.body.clone();
        let (mode, arg) = mode.split_once(':').unwrap_or((mode.as_str(), ""));
        match mode {
            "" => Action::Continue,
            "header_after_continue" => {
                let _ = self.get_http_request_header("content-type");
                Action::Continue
            }
            _ if !end_of_stream => Action::Pause,
            "buffer" => Action::Continue,
            "echo" => {
                let body = self.get_http_request_body(0, body_size).unwrap_or_default();
                self.send_http_response(200, vec![("x-probe-echo", "1")], Some(&body));
                Action::Pause
            }
            "replace" => {
                self.set_http_request_body(0, body_size, arg.as_bytes());
                Action::Continue
            }
            "reply_at_end" => {
                self.send_http_response(arg.parse().unwrap_or(413), vec![], Some(b"too much"));
                Action::Pause
            }
            _ => Action::Continue,
        }
    }

    fn on_http_request_trailers(&mut self, num_trailers: usize) -> Action {
        self.state("trailers", num_trailers.to_string().as_bytes());
        if let Some(replacement) = self.trailers.strip_prefix("body:") {
            // What the filter sees of the held body now, then replaces it.
            let body = self
                .get_http_request_body(0, usize::MAX >> 1)
                .unwrap_or_default();
            self.state("trailer_body", &body);
            self.set_http_request_body(0, body.len(), replacement.as_bytes());
        }
        if self.trailers == "pause" {
            Action::Pause
        } else {
            Action::Continue
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let mode = self.response.clone();
        let (mode, arg) = mode.split_once(':').unwrap_or((mode.as_str(), ""));
        match mode {
            "header" => {
                let status = self.get_http_response_header(":status").unwrap_or_default();
                self.add_http_response_header("x-probe-seen", &status);
                Action::Continue
            }
            "upper" => {
                self.set_http_response_header("content-length", None);
                Action::Continue
            }
            "pause_headers" => Action::Pause,
            "reply" => {
                self.send_http_response(
                    arg.parse().unwrap_or(500),
                    vec![],
                    Some(b"replaced by probe"),
                );
                Action::Pause
            }
            _ => Action::Continue,
        }
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        match self.response.as_str() {
            "upper" | "buffer" if !end_of_stream => Action::Pause,
            "upper" => {
                let body = self
                    .get_http_response_body(0, body_size)
                    .unwrap_or_default();
                self.set_http_response_body(0, body_size, &body.to_ascii_uppercase());
                Action::Continue
            }
            _ => Action::Continue,
        }
    }

    fn on_log(&mut self) {
        let path = self.get_http_request_header(":path").unwrap_or_default();
        let status = self.get_http_response_header(":status").unwrap_or_default();
        log(
            LogLevel::Info,
            &format!("probe: on_log {} {path} {status}", self.id),
        );
    }
}
