//! Worker threads: each owns one VM (a wasmtime `Store` is not `Sync`) and runs commands
//! sent over a channel, like an Envoy worker's event loop. [`Worker`] is the handle a test
//! uses; it is `Send + Sync`, so several test threads can drive several workers at once.

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use crate::abi::StreamType;
use crate::callouts::{GrpcCall, GrpcEvent, HttpCall, HttpCallReply};
use crate::config::{FailurePolicy, Shared};
use crate::exchange::{Callback, Exchange, VmFailure};
use crate::headers::Headers;
use crate::logs::VmRole;
use crate::request::Request;
use crate::state::{AfterCall, CallResponse, Ready};
use crate::stream::StreamDriver;
use crate::vm::Vm;

/// A unit of work for a worker thread.
pub struct Command(Box<dyn FnOnce(&mut WorkerState) + Send>);

impl Command {
    pub(crate) fn queue_ready(context_id: u32, token: u32) -> Command {
        Command(Box::new(move |w: &mut WorkerState| {
            w.queue_ready(context_id, token)
        }))
    }
}

/// The state a worker thread owns.
pub struct WorkerState {
    index: usize,
    shared: Shared,
    vm: Option<Vm>,
    drivers: BTreeMap<u32, StreamDriver>,
    reloads: usize,
}

impl WorkerState {
    fn policy(&self) -> FailurePolicy {
        self.shared.config.failure_policy
    }

    fn allow_stop(&self) -> bool {
        self.shared.config.allow_on_headers_stop_iteration
    }

    /// Creates, initializes, starts and configures this worker's VM.
    fn boot(&mut self) -> Result<(), VmFailure> {
        let mut vm = Vm::instantiate(&self.shared, VmRole::Worker(self.index))?;
        let result = (|| {
            vm.initialize()?;
            if !vm.start()? {
                return Err(VmFailure {
                    message: "proxy_on_vm_start returned false".into(),
                    callback: "proxy_on_vm_start".into(),
                    panic: None,
                });
            }
            if !vm.configure()? {
                return Err(VmFailure {
                    message: "proxy_on_configure returned false (Envoy: failed to configure thread-local Wasm plugin)".into(),
                    callback: "proxy_on_configure".into(),
                    panic: None,
                });
            }
            Ok(())
        })();
        if let Err(failure) = &result {
            vm.failed.get_or_insert_with(|| failure.clone());
        }
        self.vm = Some(vm);
        result
    }

    fn open(&mut self, request: Request) -> u32 {
        let policy = self.policy();
        if policy == FailurePolicy::FailReload
            && self.vm.as_ref().is_some_and(|vm| vm.failed.is_some())
        {
            self.reloads += 1;
            let _ = self.boot();
        }
        let request = self.with_connection_manager_headers(request);
        let (id, vm) = match self.vm.as_mut() {
            Some(vm) => {
                let state = vm.store.data_mut();
                let id = state.next_context_id;
                state.next_context_id += 1;
                (id, Some(vm))
            }
            None => (0, None),
        };
        let driver = StreamDriver::open(vm, id, self.index, request, policy);
        self.drivers.insert(id, driver);
        self.pump();
        id
    }

    fn with_connection_manager_headers(&self, mut request: Request) -> Request {
        use std::sync::atomic::Ordering;
        if self.shared.config.connection_manager_headers {
            if !request.headers.contains("x-forwarded-proto") {
                request.headers.add("x-forwarded-proto", "http");
            }
            if !request.headers.contains("x-request-id") {
                let n = self.shared.request_ids.fetch_add(1, Ordering::SeqCst) + 1;
                request
                    .headers
                    .add("x-request-id", format!("00000000-0000-4000-8000-{n:012x}"));
            }
        }
        let h = request.headers.clone();
        let path = h.get(":path").unwrap_or("").to_string();
        let derived = [
            ("path", path.clone()),
            ("url_path", path.split('?').next().unwrap_or("").to_string()),
            ("host", h.get(":authority").unwrap_or("").to_string()),
            ("method", h.get(":method").unwrap_or("").to_string()),
            ("scheme", h.get(":scheme").unwrap_or("http").to_string()),
            ("protocol", "HTTP/1.1".to_string()),
            ("id", h.get("x-request-id").unwrap_or("").to_string()),
        ];
        let mut properties = crate::properties::Properties::new();
        for (key, value) in derived {
            properties.set(&["request", key], value);
        }
        properties.set(
            &["request", "headers"],
            crate::properties::PropertyValue::Map(
                h.entries()
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            crate::properties::PropertyValue::Bytes(v.clone()),
                        )
                    })
                    .collect(),
            ),
        );
        properties.extend_from(&request.properties);
        request.properties = properties;
        request
    }

    /// Delivers whatever can be delivered until nothing moves.
    fn pump(&mut self) {
        let (policy, allow) = (self.policy(), self.allow_stop());
        loop {
            let mut progressed = false;
            let ids: Vec<u32> = self.drivers.keys().copied().collect();
            for id in ids {
                if let Some(driver) = self.drivers.get_mut(&id) {
                    if driver.step(self.vm.as_mut(), policy, allow) {
                        progressed = true;
                        self.apply_after_call();
                        break;
                    }
                }
            }
            if !progressed {
                let ready = self
                    .vm
                    .as_mut()
                    .and_then(|vm| vm.store.data_mut().ready.pop_front());
                if let Some(ready) = ready {
                    self.deliver(ready);
                    self.apply_after_call();
                    progressed = true;
                }
            }
            if !progressed {
                break;
            }
        }
    }

    /// Carries out what callbacks queued: local replies, resumes, resets.
    fn apply_after_call(&mut self) {
        let (policy, allow) = (self.policy(), self.allow_stop());
        loop {
            let actions: Vec<AfterCall> = match self.vm.as_mut() {
                Some(vm) => std::mem::take(&mut vm.store.data_mut().after_call),
                None => Vec::new(),
            };
            if actions.is_empty() {
                break;
            }
            for action in actions {
                match action {
                    AfterCall::LocalReply { context_id, reply } => {
                        if let Some(driver) = self.drivers.get_mut(&context_id) {
                            let mut ctx = StreamDriver::ctx(self.vm.as_mut(), policy, allow);
                            driver.send_local_reply(&mut ctx, reply);
                        }
                    }
                    AfterCall::Continue { context_id, stream } => {
                        if let Some(driver) = self.drivers.get_mut(&context_id) {
                            driver.resume_stream(self.vm.as_mut(), stream, policy, allow);
                        }
                    }
                    AfterCall::Close {
                        context_id,
                        stream: StreamType::HttpRequest | StreamType::HttpResponse,
                    } => {
                        if let Some(driver) = self.drivers.get_mut(&context_id) {
                            driver.close();
                        }
                    }
                    AfterCall::Close { .. } => {}
                }
            }
        }
        self.propagate_failure();
    }

    /// A VM failure outside a stream's own callbacks fails every open stream.
    fn propagate_failure(&mut self) {
        let policy = self.policy();
        if let Some(failure) = self.vm.as_ref().and_then(|vm| vm.failed.clone()) {
            for driver in self.drivers.values_mut() {
                driver.vm_failed(failure.clone(), policy);
            }
        }
    }

    /// Delivers a callout answer (as a fresh callback on the root context).
    fn deliver(&mut self, ready: Ready) {
        let Some(vm) = self.vm.as_mut() else { return };
        let root = vm.root();
        match ready {
            Ready::Http { token, reply } => {
                let state = vm.store.data_mut();
                state.pending_http.remove(&token);
                let owner = state.http_calls.get(&token).map(|c| c.context_id);
                let (headers, body, trailers) = match reply {
                    HttpCallReply::Response {
                        headers,
                        body,
                        trailers,
                    } => (headers, body, trailers),
                    HttpCallReply::Timeout => {
                        let body = b"upstream request timeout".to_vec();
                        let headers = Headers::from_pairs([
                            (":status", "504".to_string()),
                            ("content-length", body.len().to_string()),
                            ("content-type", "text/plain".to_string()),
                        ]);
                        (headers, body, Headers::new())
                    }
                    HttpCallReply::Reset => {
                        state.status = (crate::abi::BROKEN_CONNECTION, b"reset".to_vec());
                        (Headers::new(), Vec::new(), Headers::new())
                    }
                };
                let args = [
                    root as i32,
                    token as i32,
                    headers.len() as i32,
                    body.len() as i32,
                    trailers.len() as i32,
                ];
                state.call_response = Some(CallResponse {
                    headers,
                    body,
                    trailers,
                });
                if let Some(driver) = owner.and_then(|id| self.drivers.get_mut(&id)) {
                    driver.record(Callback::HttpCallResponse { token });
                }
                let _ = vm.call("proxy_on_http_call_response", root, &args);
                let state = vm.store.data_mut();
                state.call_response = None;
                state.status = (0, Vec::new());
            }
            Ready::Grpc { token, event } => {
                let state = vm.store.data_mut();
                let Some(call) = state.grpc_calls.get(&token).cloned() else {
                    return;
                };
                if call.cancelled {
                    return;
                }
                let (name, what, args) = match event {
                    GrpcEvent::InitialMetadata(h) => {
                        let n = h.len() as i32;
                        state.grpc_initial_metadata = Some(h);
                        (
                            "proxy_on_grpc_receive_initial_metadata",
                            "initial_metadata",
                            vec![root as i32, token as i32, n],
                        )
                    }
                    GrpcEvent::Message(m) => {
                        let n = m.len() as i32;
                        state.grpc_message = Some(m);
                        (
                            "proxy_on_grpc_receive",
                            "receive",
                            vec![root as i32, token as i32, n],
                        )
                    }
                    GrpcEvent::TrailingMetadata(h) => {
                        let n = h.len() as i32;
                        state.grpc_trailing_metadata = Some(h);
                        (
                            "proxy_on_grpc_receive_trailing_metadata",
                            "trailing_metadata",
                            vec![root as i32, token as i32, n],
                        )
                    }
                    GrpcEvent::Close { code, message } => {
                        state.status = (code, message.into_bytes());
                        (
                            "proxy_on_grpc_close",
                            "close",
                            vec![root as i32, token as i32, code as i32],
                        )
                    }
                };
                if let Some(driver) = self.drivers.get_mut(&call.context_id) {
                    driver.record(Callback::Grpc { token, what });
                }
                let _ = vm.call(name, root, &args);
                let state = vm.store.data_mut();
                state.grpc_initial_metadata = None;
                state.grpc_trailing_metadata = None;
                state.grpc_message = None;
                state.status = (0, Vec::new());
                if !call.streaming || what == "close" {
                    if let Some(c) = state.grpc_calls.get_mut(&token) {
                        if !c.streaming || what == "close" {
                            c.cancelled = true;
                        }
                    }
                }
            }
        }
    }

    fn queue_ready(&mut self, context_id: u32, token: u32) {
        if let Some(vm) = self.vm.as_mut() {
            if vm.failed.is_none() {
                let _ = vm.call(
                    "proxy_on_queue_ready",
                    context_id,
                    &[context_id as i32, token as i32],
                );
            }
        }
        self.apply_after_call();
        self.pump();
    }

    fn fire_ticks(&mut self) {
        loop {
            let Some(vm) = self.vm.as_mut() else { return };
            if vm.failed.is_some() {
                return;
            }
            let state = vm.store.data_mut();
            let Some(period) = state.tick_period else {
                return;
            };
            let now = state.shared.clock.monotonic_nanos();
            if state.next_tick_nanos > now {
                return;
            }
            let nanos = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX).max(1);
            state.next_tick_nanos = state.next_tick_nanos.saturating_add(nanos);
            let root = vm.root();
            let _ = vm.call("proxy_on_tick", root, &[root as i32]);
            self.apply_after_call();
            self.pump();
        }
    }

    fn finish(&mut self, id: u32) -> Option<Exchange> {
        self.pump();
        let policy = self.policy();
        let mut driver = self.drivers.remove(&id)?;
        let exchange = driver.finish(self.vm.as_mut(), policy);
        self.apply_after_call();
        self.pump();
        Some(exchange)
    }
}

/// A handle on one worker thread (one VM). `Send + Sync`: drive several workers from
/// several test threads at once.
pub struct Worker {
    index: usize,
    tx: Sender<Command>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts the thread and boots its VM; the boot result comes back with the handle.
    pub(crate) fn spawn(index: usize, shared: Shared) -> (Worker, Result<(), VmFailure>) {
        let (tx, rx): (Sender<Command>, Receiver<Command>) = mpsc::channel();
        let (boot_tx, boot_rx) = mpsc::channel();
        if let Ok(mut mailboxes) = shared.mailboxes.lock() {
            mailboxes.insert(VmRole::Worker(index), tx.clone());
        }
        let thread = std::thread::Builder::new()
            .name(format!("envoy-worker-{index}"))
            .spawn(move || {
                let mut state = WorkerState {
                    index,
                    shared,
                    vm: None,
                    drivers: BTreeMap::new(),
                    reloads: 0,
                };
                let _ = boot_tx.send(state.boot());
                while let Ok(Command(job)) = rx.recv() {
                    job(&mut state);
                }
            });
        let boot = match &thread {
            Ok(_) => boot_rx.recv().unwrap_or_else(|_| {
                Err(VmFailure {
                    message: "the worker thread died while booting".into(),
                    callback: "boot".into(),
                    panic: None,
                })
            }),
            Err(e) => Err(VmFailure {
                message: format!("cannot start a worker thread: {e}"),
                callback: "boot".into(),
                panic: None,
            }),
        };
        (
            Worker {
                index,
                tx,
                thread: thread.ok(),
            },
            boot,
        )
    }

    /// Runs `f` on the worker thread and returns its result (`None` if the thread died).
    pub fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut WorkerState) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = mpsc::sync_channel(1);
        let job = Command(Box::new(move |state: &mut WorkerState| {
            let _ = tx.send(f(state));
        }));
        self.tx.send(job).ok()?;
        rx.recv().ok()
    }

    /// This worker's number.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Sends a request through the filter and carries the exchange as far as it goes
    /// (callouts answered by the responders; pending ones leave it stalled), then ends
    /// the stream (`on_log`, `on_done`, `on_delete`).
    pub fn send(&self, request: Request) -> Exchange {
        let index = self.index;
        self.run(move |w| {
            let id = w.open(request);
            w.finish(id)
        })
        .flatten()
        .unwrap_or_else(|| dead_worker(index))
    }

    /// Starts a request and carries it as far as it goes, leaving the stream open so the
    /// test can answer callouts or advance time before [`OpenStream::finish`].
    pub fn open(&self, request: Request) -> OpenStream<'_> {
        let id = self.run(move |w| w.open(request)).unwrap_or(0);
        OpenStream { worker: self, id }
    }

    /// Answers a pending HTTP callout; the answer is delivered now and the worker's
    /// streams go on as far as they can.
    pub fn answer_http_call(&self, token: u32, reply: HttpCallReply) {
        self.run(move |w| {
            if let Some(vm) = w.vm.as_mut() {
                vm.store
                    .data_mut()
                    .ready
                    .push_back(Ready::Http { token, reply });
            }
            w.pump();
        });
    }

    /// Delivers gRPC events on a call or stream, in order.
    pub fn answer_grpc(&self, token: u32, events: Vec<GrpcEvent>) {
        self.run(move |w| {
            if let Some(vm) = w.vm.as_mut() {
                for event in events {
                    vm.store
                        .data_mut()
                        .ready
                        .push_back(Ready::Grpc { token, event });
                }
            }
            w.pump();
        });
    }

    /// Every HTTP callout this worker's VM made, by token.
    pub fn http_calls(&self) -> Vec<HttpCall> {
        self.run(|w| {
            w.vm.as_ref()
                .map(|vm| vm.store.data().http_calls.values().cloned().collect())
        })
        .flatten()
        .unwrap_or_default()
    }

    /// The HTTP callouts still waiting for an answer.
    pub fn pending_http_calls(&self) -> Vec<HttpCall> {
        self.run(|w| {
            w.vm.as_ref()
                .map(|vm| vm.store.data().pending_http.values().cloned().collect())
        })
        .flatten()
        .unwrap_or_default()
    }

    /// Every gRPC call and stream this worker's VM opened.
    pub fn grpc_calls(&self) -> Vec<GrpcCall> {
        self.run(|w| {
            w.vm.as_ref()
                .map(|vm| vm.store.data().grpc_calls.values().cloned().collect())
        })
        .flatten()
        .unwrap_or_default()
    }

    /// The size of the VM's linear memory in bytes (0 without a VM).
    pub fn memory_size(&self) -> usize {
        self.run(|w| w.vm.as_mut().map_or(0, Vm::memory_size))
            .unwrap_or(0)
    }

    /// Calls an export directly (as the current `context_id`, with all its i32 arguments,
    /// the context id included), outside any stream
    /// this host opened: what a host bug (or a host that re-enters the module) looks like.
    /// `Err` when the call trapped (the VM is then failed for good).
    pub fn call_export(
        &self,
        name: &'static str,
        context_id: u32,
        args: Vec<i32>,
    ) -> Option<Result<Option<i32>, VmFailure>> {
        self.run(move |w| w.vm.as_mut().map(|vm| vm.call(name, context_id, &args)))
            .flatten()
    }

    /// Why this worker's VM failed, if it did.
    pub fn failure(&self) -> Option<VmFailure> {
        self.run(|w| w.vm.as_ref().and_then(|vm| vm.failed.clone()))
            .flatten()
    }

    /// How many times `FAIL_RELOAD` recreated the VM.
    pub fn reloads(&self) -> usize {
        self.run(|w| w.reloads).unwrap_or(0)
    }

    /// The tick period the module set (`None`: no timer).
    pub fn tick_period(&self) -> Option<std::time::Duration> {
        self.run(|w| w.vm.as_ref().and_then(|vm| vm.store.data().tick_period))
            .flatten()
    }

    /// Fires the ticks that are due at the current virtual time.
    pub(crate) fn fire_ticks(&self) {
        self.run(WorkerState::fire_ticks);
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let (tx, _) = mpsc::channel();
        let old = std::mem::replace(&mut self.tx, tx);
        drop(old);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn dead_worker(index: usize) -> Exchange {
    Exchange {
        outcome: crate::exchange::Outcome::VmFailed(VmFailure {
            message: format!("worker {index} is gone"),
            callback: "send".into(),
            panic: None,
        }),
        upstream: Default::default(),
        response: None,
        callbacks: Vec::new(),
        module_time: Default::default(),
        filter_state: Default::default(),
        context_id: 0,
        worker: index,
    }
}

/// A stream left open on a worker ([`Worker::open`]).
pub struct OpenStream<'a> {
    worker: &'a Worker,
    id: u32,
}

impl OpenStream<'_> {
    /// The stream's context id.
    pub fn context_id(&self) -> u32 {
        self.id
    }

    /// The HTTP callouts this stream made that still wait for an answer.
    pub fn pending_http_calls(&self) -> Vec<HttpCall> {
        let id = self.id;
        self.worker
            .pending_http_calls()
            .into_iter()
            .filter(|c| c.context_id == id)
            .collect()
    }

    /// Carries the exchange as far as it goes now and ends the stream.
    pub fn finish(self) -> Exchange {
        let id = self.id;
        let index = self.worker.index;
        self.worker
            .run(move |w| w.finish(id))
            .flatten()
            .unwrap_or_else(|| dead_worker(index))
    }
}
