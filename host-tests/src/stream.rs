//! One HTTP stream through the filter, emulating Envoy's filter manager for this filter:
//! header/body/trailer iteration, pauses (StopIteration vs StopAllIteration), buffering
//! with cumulative sizes, resumes, local replies (deferred, then encoded through the
//! filter's own response callbacks), resets, failures, and `on_log` → `on_done` →
//! `on_delete` at the end.

use std::collections::{BTreeMap, VecDeque};

use crate::abi::{Action, StreamType};
use crate::config::FailurePolicy;
use crate::exchange::{
    Callback, ClientResponse, Direction, Exchange, LocalReply, Outcome, Stall, StallKind,
    UpstreamView, VmFailure,
};
use crate::headers::Headers;
use crate::request::{Request, UpstreamResponse};
use crate::state::{Access, AfterCall, StreamData};
use crate::vm::Vm;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Iteration {
    Continue,
    StopSingle,
    StopAll,
}

#[derive(Debug, Default, Clone)]
struct Out {
    headers: Option<Headers>,
    body: Vec<u8>,
    /// The body as it went on, one entry per non-empty data frame.
    frames: Vec<Vec<u8>>,
    trailers: Option<Headers>,
    end: bool,
}

#[derive(Debug)]
struct Pipe {
    iteration: Iteration,
    headers_arrived: bool,
    headers_continued: bool,
    /// The filter's last body callback asked Envoy to buffer.
    buffering: bool,
    /// Envoy's buffered data for this filter.
    buffered: Option<Vec<u8>>,
    /// The sender has sent everything.
    complete: bool,
    trailers_arrived: bool,
    trailers_forwarded: bool,
    out: Out,
}

impl Pipe {
    fn new() -> Pipe {
        Pipe {
            iteration: Iteration::Continue,
            headers_arrived: false,
            headers_continued: false,
            buffering: false,
            buffered: None,
            complete: false,
            trailers_arrived: false,
            trailers_forwarded: false,
            out: Out::default(),
        }
    }
}

#[derive(Debug)]
enum Piece {
    Headers(Headers, bool),
    Body(Vec<u8>, bool),
    Trailers(Headers),
}

fn pieces(headers: Headers, chunks: Vec<Vec<u8>>, trailers: Option<Headers>) -> VecDeque<Piece> {
    let mut out = VecDeque::new();
    let has_trailers = trailers.is_some();
    out.push_back(Piece::Headers(headers, chunks.is_empty() && !has_trailers));
    let n = chunks.len();
    for (i, chunk) in chunks.into_iter().enumerate() {
        out.push_back(Piece::Body(chunk, i + 1 == n && !has_trailers));
    }
    if let Some(t) = trailers {
        out.push_back(Piece::Trailers(t));
    }
    out
}

enum Called {
    /// The module answered.
    Returned(Action),
    /// The filter is gone (fail-open) or has no such callback: Envoy continues.
    Skipped,
    /// The VM failed now or before; the stream was failed.
    Failed,
}

/// A stream in flight on one worker.
pub(crate) struct StreamDriver {
    pub id: u32,
    worker: usize,
    /// Time spent inside the module's header, body and trailer callbacks.
    module_time: std::time::Duration,
    req: Pipe,
    resp: Pipe,
    request_pieces: VecDeque<Piece>,
    response_pieces: VecDeque<Piece>,
    upstream_response: Option<UpstreamResponse>,
    early_response: bool,
    pub callbacks: Vec<Callback>,
    local_reply: Option<LocalReply>,
    local_reply_encoding: bool,
    reentered: bool,
    reset: bool,
    upstream_reset: bool,
    failure: Option<VmFailure>,
    failure_reply_sent: bool,
    /// Fail-open after a failure (or the VM was gone at the start): pass-through.
    filter_absent: bool,
    /// Whether the module knows this context (`proxy_on_context_create` ran).
    created: bool,
    ended: bool,
}

impl StreamDriver {
    /// Creates the stream: registers its data and calls `proxy_on_context_create`.
    pub fn open(
        vm: Option<&mut Vm>,
        id: u32,
        worker: usize,
        request: Request,
        policy: FailurePolicy,
    ) -> StreamDriver {
        let Request {
            headers,
            chunks,
            trailers,
            properties,
            upstream,
            early_response,
        } = request;
        let mut driver = StreamDriver {
            id,
            worker,
            req: Pipe::new(),
            resp: Pipe::new(),
            request_pieces: pieces(headers, chunks, trailers),
            response_pieces: VecDeque::new(),
            upstream_response: Some(upstream),
            early_response,
            callbacks: Vec::new(),
            module_time: std::time::Duration::ZERO,
            local_reply: None,
            local_reply_encoding: false,
            reentered: false,
            reset: false,
            upstream_reset: false,
            failure: None,
            failure_reply_sent: false,
            filter_absent: false,
            created: false,
            ended: false,
        };
        let Some(vm) = vm else {
            driver.filter_absent = true;
            return driver;
        };
        if let Some(failure) = vm.failed.clone() {
            driver.on_failure(failure, policy);
            return driver;
        }
        let root = vm.root();
        let data = StreamData {
            properties,
            ..StreamData::default()
        };
        vm.store.data_mut().streams.insert(id, data);
        driver.callbacks.push(Callback::ContextCreate);
        match vm.call("proxy_on_context_create", id, &[id as i32, root as i32]) {
            Ok(_) => driver.created = true,
            Err(failure) => driver.on_failure(failure, policy),
        }
        driver
    }

    fn on_failure(&mut self, failure: VmFailure, policy: FailurePolicy) {
        if self.failure.is_none() {
            self.failure = Some(failure);
        }
        if policy == FailurePolicy::FailOpen {
            self.filter_absent = true;
        } else {
            self.fail_stream();
        }
    }

    /// Envoy's `failStream`: a 503 local reply that skips this filter (or a reset if the
    /// client already has response headers).
    fn fail_stream(&mut self) {
        if self.failure_reply_sent {
            return;
        }
        self.failure_reply_sent = true;
        self.abort_request();
        if self.resp.out.headers.is_some() {
            self.reset = true;
        } else {
            self.resp.out = Out {
                headers: Some(Headers::from_pairs([(":status", "503")])),
                body: Vec::new(),
                frames: Vec::new(),
                trailers: None,
                end: true,
            };
        }
    }

    fn abort_request(&mut self) {
        self.request_pieces.clear();
        self.upstream_response = None;
        if self.req.out.headers.is_some() && !self.req.out.end {
            self.upstream_reset = true;
        }
    }

    /// Whether nothing more happens on this stream.
    pub fn done(&self) -> bool {
        self.resp.out.end || self.reset || self.reentered || self.failure_reply_sent
    }

    fn pipe(&mut self, dir: Direction) -> &mut Pipe {
        match dir {
            Direction::Request => &mut self.req,
            Direction::Response => &mut self.resp,
        }
    }

    /// Delivers the next piece that has arrived; false when there is none.
    pub fn step(&mut self, vm: Option<&mut Vm>, policy: FailurePolicy, allow_stop: bool) -> bool {
        if self.done() {
            return false;
        }
        let mut vm = vm;
        if self.early_response
            && self.req.out.headers.is_some()
            && !self.req.out.end
            && self.local_reply.is_none()
        {
            if let Some(response) = self.upstream_response.take() {
                // The upstream answers the head alone: its headers come back now, the rest
                // once the request has ended.
                self.response_pieces = pieces(response.headers, response.chunks, response.trailers);
                if let Some(head) = self.response_pieces.pop_front() {
                    self.deliver(
                        vm.as_deref_mut(),
                        Direction::Response,
                        head,
                        policy,
                        allow_stop,
                    );
                    return true;
                }
            }
        }
        if let Some(piece) = self.request_pieces.pop_front() {
            self.deliver(
                vm.as_deref_mut(),
                Direction::Request,
                piece,
                policy,
                allow_stop,
            );
            return true;
        }
        if let Some(piece) = self.response_pieces.pop_front() {
            self.deliver(vm, Direction::Response, piece, policy, allow_stop);
            return true;
        }
        false
    }

    fn deliver(
        &mut self,
        vm: Option<&mut Vm>,
        dir: Direction,
        piece: Piece,
        policy: FailurePolicy,
        allow_stop: bool,
    ) {
        let mut ctx = Ctx {
            vm,
            policy,
            allow_stop,
        };
        match piece {
            Piece::Headers(headers, eos) => self.deliver_headers(&mut ctx, dir, headers, eos),
            Piece::Body(chunk, eos) => self.deliver_body(&mut ctx, dir, chunk, eos),
            Piece::Trailers(trailers) => self.deliver_trailers(&mut ctx, dir, trailers),
        }
    }

    /// Calls a stream callback unless the filter is gone; handles a trap.
    fn call(&mut self, ctx: &mut Ctx<'_>, name: &'static str, args: &[i32]) -> Called {
        if self.filter_absent || !self.created {
            return Called::Skipped;
        }
        let Some(vm) = ctx.vm.as_deref_mut() else {
            return Called::Skipped;
        };
        let started = std::time::Instant::now();
        let result = vm.call(name, self.id, args);
        self.module_time += started.elapsed();
        match result {
            Ok(Some(raw)) => Called::Returned(Action::from_abi(raw as u32)),
            Ok(None) => Called::Skipped,
            Err(failure) => {
                self.on_failure(failure, ctx.policy);
                if self.filter_absent {
                    Called::Skipped
                } else {
                    Called::Failed
                }
            }
        }
    }

    fn with_data<T>(&self, ctx: &mut Ctx<'_>, f: impl FnOnce(&mut StreamData) -> T) -> Option<T> {
        ctx.vm
            .as_deref_mut()
            .and_then(|vm| vm.store.data_mut().streams.get_mut(&self.id))
            .map(f)
    }

    /// Takes this stream's pending local reply (set during the last callback) and sends it.
    fn take_local_reply(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let Some(vm) = ctx.vm.as_deref_mut() else {
            return false;
        };
        let actions = &mut vm.store.data_mut().after_call;
        let position = actions.iter().position(
            |a| matches!(a, AfterCall::LocalReply { context_id, .. } if *context_id == self.id),
        );
        let Some(position) = position else {
            return false;
        };
        if let AfterCall::LocalReply { reply, .. } = actions.remove(position) {
            self.send_local_reply(ctx, reply);
        }
        true
    }

    fn stopped(&self, dir: Direction) -> bool {
        self.done() || (dir == Direction::Request && self.local_reply.is_some())
    }

    fn deliver_headers(&mut self, ctx: &mut Ctx<'_>, dir: Direction, headers: Headers, eos: bool) {
        {
            let pipe = self.pipe(dir);
            pipe.headers_arrived = true;
            pipe.complete = eos;
        }
        let count = headers.len();
        self.with_data(ctx, |d| match dir {
            Direction::Request => {
                d.request_headers = headers.clone();
                d.request_headers_access = Access::ReadWrite;
            }
            Direction::Response => {
                d.response_headers = headers.clone();
                d.response_headers_access = Access::ReadWrite;
            }
        });
        if self.filter_absent {
            // The filter is gone: Envoy passes the headers on.
            self.set_out_headers(ctx, dir, headers);
            return;
        }
        let name = match dir {
            Direction::Request => "proxy_on_request_headers",
            Direction::Response => "proxy_on_response_headers",
        };
        let action = match self.call(ctx, name, &[self.id as i32, count as i32, i32::from(eos)]) {
            Called::Returned(action) => action,
            Called::Skipped => Action::Continue,
            Called::Failed => return,
        };
        self.callbacks.push(match dir {
            Direction::Request => Callback::RequestHeaders {
                headers: count,
                end_of_stream: eos,
                action,
            },
            Direction::Response => Callback::ResponseHeaders {
                headers: count,
                end_of_stream: eos,
                action,
            },
        });
        if self.take_local_reply(ctx) {
            return;
        }
        match action {
            Action::Continue => self.forward_headers(ctx, dir),
            Action::Pause if ctx.allow_stop => self.pipe(dir).iteration = Iteration::StopSingle,
            _ => self.pipe(dir).iteration = Iteration::StopAll,
        }
    }

    fn current_headers(&self, ctx: &mut Ctx<'_>, dir: Direction) -> Headers {
        self.with_data(ctx, |d| match dir {
            Direction::Request => d.request_headers.clone(),
            Direction::Response => d.response_headers.clone(),
        })
        .unwrap_or_default()
    }

    fn forward_headers(&mut self, ctx: &mut Ctx<'_>, dir: Direction) {
        let headers = self.current_headers(ctx, dir);
        self.set_out_headers(ctx, dir, headers);
    }

    fn set_out_headers(&mut self, ctx: &mut Ctx<'_>, dir: Direction, headers: Headers) {
        self.with_data(ctx, |d| match dir {
            Direction::Request => d.request_headers_access = Access::None,
            Direction::Response => d.response_headers_access = Access::None,
        });
        let pipe = self.pipe(dir);
        pipe.headers_continued = true;
        pipe.out.headers = Some(headers);
        if pipe.complete && pipe.buffered.is_none() && !pipe.trailers_arrived {
            self.end_out(dir);
        }
    }

    fn forward_data(&mut self, dir: Direction, data: Vec<u8>, end: bool) {
        let pipe = self.pipe(dir);
        pipe.out.body.extend_from_slice(&data);
        if !data.is_empty() {
            pipe.out.frames.push(data);
        }
        if end {
            self.end_out(dir);
        }
    }

    fn end_out(&mut self, dir: Direction) {
        let pipe = self.pipe(dir);
        if pipe.out.end {
            return;
        }
        pipe.out.end = true;
        if dir == Direction::Request && self.local_reply.is_none() {
            // The upstream has the whole request: it answers.
            if let Some(response) = self.upstream_response.take() {
                self.response_pieces = pieces(response.headers, response.chunks, response.trailers);
            }
        }
    }

    fn deliver_body(&mut self, ctx: &mut Ctx<'_>, dir: Direction, chunk: Vec<u8>, eos: bool) {
        if self.stopped(dir) {
            return;
        }
        let pipe = self.pipe(dir);
        if eos {
            pipe.complete = true;
        }
        if pipe.iteration == Iteration::StopAll {
            // handleDataIfStopAll: Envoy buffers without calling the filter.
            pipe.buffered
                .get_or_insert_with(Vec::new)
                .extend_from_slice(&chunk);
            return;
        }
        if self.filter_absent {
            self.forward_data(dir, chunk, eos);
            return;
        }
        self.call_body(ctx, dir, chunk, eos);
    }

    fn call_body(&mut self, ctx: &mut Ctx<'_>, dir: Direction, chunk: Vec<u8>, eos: bool) {
        let pipe = self.pipe(dir);
        let view = if pipe.buffering {
            let mut all = pipe.buffered.take().unwrap_or_default();
            all.extend_from_slice(&chunk);
            all
        } else {
            chunk
        };
        let size = view.len();
        self.with_data(ctx, |d| match dir {
            Direction::Request => {
                d.request_body = view.clone();
                d.request_end_of_stream = eos;
            }
            Direction::Response => {
                d.response_body = view.clone();
                d.response_end_of_stream = eos;
            }
        });
        let name = match dir {
            Direction::Request => "proxy_on_request_body",
            Direction::Response => "proxy_on_response_body",
        };
        let called = self.call(ctx, name, &[self.id as i32, size as i32, i32::from(eos)]);
        let view = self
            .with_data(ctx, |d| match dir {
                Direction::Request => {
                    d.request_end_of_stream = false;
                    std::mem::take(&mut d.request_body)
                }
                Direction::Response => {
                    d.response_end_of_stream = false;
                    std::mem::take(&mut d.response_body)
                }
            })
            .unwrap_or(view);
        let action = match called {
            Called::Returned(action) => action,
            Called::Skipped => Action::Continue,
            Called::Failed => return,
        };
        if !self.filter_absent {
            self.callbacks.push(match dir {
                Direction::Request => Callback::RequestBody {
                    size,
                    end_of_stream: eos,
                    action,
                },
                Direction::Response => Callback::ResponseBody {
                    size,
                    end_of_stream: eos,
                    action,
                },
            });
        }
        if self.take_local_reply(ctx) {
            return;
        }
        let pipe = self.pipe(dir);
        pipe.buffering = false;
        match action {
            Action::Continue => {
                if pipe.iteration == Iteration::StopSingle {
                    pipe.buffered = Some(view);
                    self.resume(ctx, dir);
                } else {
                    let end = pipe.complete && !pipe.trailers_arrived;
                    self.forward_data(dir, view, end);
                }
            }
            Action::Pause | Action::Other(2) => {
                pipe.iteration = Iteration::StopSingle;
                pipe.buffered = Some(view);
                pipe.buffering = true;
            }
            Action::Other(_) => {
                // StopIterationNoBuffer: the chunk is not kept.
                pipe.iteration = Iteration::StopSingle;
            }
        }
    }

    fn deliver_trailers(&mut self, ctx: &mut Ctx<'_>, dir: Direction, trailers: Headers) {
        if self.stopped(dir) {
            return;
        }
        {
            let pipe = self.pipe(dir);
            pipe.complete = true;
            pipe.trailers_arrived = true;
        }
        self.with_data(ctx, |d| match dir {
            Direction::Request => d.request_trailers = Some(trailers.clone()),
            Direction::Response => d.response_trailers = Some(trailers.clone()),
        });
        if self.pipe(dir).iteration == Iteration::StopAll {
            return;
        }
        self.call_trailers(ctx, dir);
    }

    fn call_trailers(&mut self, ctx: &mut Ctx<'_>, dir: Direction) {
        if self.filter_absent {
            self.forward_trailers(ctx, dir);
            return;
        }
        let count = self
            .with_data(ctx, |d| {
                let (trailers, access) = match dir {
                    Direction::Request => (&d.request_trailers, &mut d.request_trailers_access),
                    Direction::Response => (&d.response_trailers, &mut d.response_trailers_access),
                };
                *access = Access::ReadWrite;
                trailers.as_ref().map_or(0, Headers::len)
            })
            .unwrap_or(0);
        let name = match dir {
            Direction::Request => "proxy_on_request_trailers",
            Direction::Response => "proxy_on_response_trailers",
        };
        // A filter that has been buffering (its last body callback paused) still sees the
        // whole buffered body, as in Envoy (`buffering_request_body_` makes `getBuffer`
        // return the decoding buffer), and may change it.
        let held = {
            let pipe = self.pipe(dir);
            if pipe.buffering {
                pipe.buffered.take()
            } else {
                None
            }
        };
        let holding = held.is_some();
        if let Some(body) = held {
            self.with_data(ctx, |d| match dir {
                Direction::Request => d.request_body = body,
                Direction::Response => d.response_body = body,
            });
        }
        let called = self.call(ctx, name, &[self.id as i32, count as i32]);
        if holding {
            let body = self
                .with_data(ctx, |d| match dir {
                    Direction::Request => std::mem::take(&mut d.request_body),
                    Direction::Response => std::mem::take(&mut d.response_body),
                })
                .unwrap_or_default();
            self.pipe(dir).buffered = Some(body);
        }
        let action = match called {
            Called::Returned(action) => action,
            Called::Skipped => Action::Continue,
            Called::Failed => return,
        };
        if !self.filter_absent {
            self.callbacks.push(match dir {
                Direction::Request => Callback::RequestTrailers {
                    trailers: count,
                    action,
                },
                Direction::Response => Callback::ResponseTrailers {
                    trailers: count,
                    action,
                },
            });
        }
        if self.take_local_reply(ctx) {
            return;
        }
        if action == Action::Continue {
            if self.pipe(dir).iteration == Iteration::StopSingle {
                self.resume(ctx, dir);
            } else {
                self.forward_trailers(ctx, dir);
            }
        } else {
            self.pipe(dir).iteration = Iteration::StopSingle;
        }
    }

    fn forward_trailers(&mut self, ctx: &mut Ctx<'_>, dir: Direction) {
        let trailers = self
            .with_data(ctx, |d| match dir {
                Direction::Request => {
                    d.request_trailers_access = Access::None;
                    d.request_trailers.clone()
                }
                Direction::Response => {
                    d.response_trailers_access = Access::None;
                    d.response_trailers.clone()
                }
            })
            .flatten();
        let pipe = self.pipe(dir);
        pipe.trailers_forwarded = true;
        pipe.out.trailers = trailers;
        self.end_out(dir);
    }

    /// Envoy's `commonContinue` (from `proxy_continue_stream` or a Continue after a stop).
    pub fn resume_stream(
        &mut self,
        vm: Option<&mut Vm>,
        stream: StreamType,
        policy: FailurePolicy,
        allow_stop: bool,
    ) {
        let dir = match stream {
            StreamType::HttpResponse => Direction::Response,
            _ => Direction::Request,
        };
        let mut ctx = Ctx {
            vm,
            policy,
            allow_stop,
        };
        // continueStream also lets go of the maps the filter held.
        self.with_data(&mut ctx, |d| match dir {
            Direction::Request => {
                d.request_headers_access = Access::None;
                d.request_trailers_access = Access::None;
            }
            Direction::Response => {
                d.response_headers_access = Access::None;
                d.response_trailers_access = Access::None;
            }
        });
        self.resume(&mut ctx, dir);
    }

    fn resume(&mut self, ctx: &mut Ctx<'_>, dir: Direction) {
        if self.stopped(dir) {
            return;
        }
        let pipe = self.pipe(dir);
        if pipe.iteration == Iteration::Continue {
            return;
        }
        let from_current = pipe.iteration == Iteration::StopAll;
        pipe.iteration = Iteration::Continue;
        pipe.buffering = false;
        if !pipe.headers_continued {
            if !pipe.headers_arrived {
                return;
            }
            self.forward_headers(ctx, dir);
        }
        let pipe = self.pipe(dir);
        let end = pipe.complete && !pipe.trailers_arrived;
        if let Some(buffered) = pipe.buffered.take() {
            if from_current {
                self.call_body(ctx, dir, buffered, end);
            } else {
                self.forward_data(dir, buffered, end);
            }
        }
        if self.stopped(dir) || self.pipe(dir).iteration != Iteration::Continue {
            return;
        }
        let pipe = self.pipe(dir);
        if pipe.trailers_arrived && !pipe.trailers_forwarded {
            if from_current {
                self.call_trailers(ctx, dir);
            } else {
                self.forward_trailers(ctx, dir);
            }
        }
    }

    /// `proxy_close_stream`: Envoy resets the stream.
    pub fn close(&mut self) {
        self.abort_request();
        self.reset = true;
    }

    /// A local reply takes effect (after the callback that sent it).
    pub fn send_local_reply(&mut self, _ctx: &mut Ctx<'_>, reply: LocalReply) {
        if self.done() {
            return;
        }
        if self.local_reply_encoding {
            // Envoy leaves such a stream hanging.
            self.reentered = true;
            return;
        }
        if self.resp.out.headers.is_some() {
            self.reset = true;
            return;
        }
        self.local_reply = Some(reply.clone());
        self.abort_request();
        let mut headers = Headers::from_pairs([(":status", reply.status.to_string())]);
        for (k, v) in reply.headers.entries() {
            headers.add(k, v);
        }
        if !reply.body.is_empty() {
            headers.replace("content-length", reply.body.len().to_string());
            if !headers.contains("content-type") {
                headers.add("content-type", "text/plain");
            }
        }
        if self.resp.headers_arrived {
            // The response is already going through the filters: Envoy sends the reply
            // straight to the client.
            self.response_pieces.clear();
            self.resp.out = Out {
                headers: Some(headers),
                frames: if reply.body.is_empty() {
                    Vec::new()
                } else {
                    vec![reply.body.clone()]
                },
                body: reply.body,
                trailers: None,
                end: true,
            };
            return;
        }
        // Encoded through the filter chain, this filter's response callbacks included.
        self.local_reply_encoding = true;
        let chunks = if reply.body.is_empty() {
            Vec::new()
        } else {
            vec![reply.body]
        };
        self.response_pieces = pieces(headers, chunks, None);
    }

    /// Runs the access-log phase and destroys the context: `on_log`, `on_done`, `on_delete`.
    pub fn finish(&mut self, vm: Option<&mut Vm>, policy: FailurePolicy) -> Exchange {
        let mut ctx = Ctx {
            vm,
            policy,
            allow_stop: false,
        };
        if !self.ended {
            self.ended = true;
            let response_headers = self.resp.out.headers.clone();
            self.with_data(&mut ctx, |d| {
                d.log_phase = true;
                d.request_headers_access = Access::Read;
                d.request_trailers_access = Access::None;
                if let Some(h) = response_headers {
                    d.response_headers = h;
                    d.response_headers_access = Access::Read;
                } else {
                    d.response_headers = Headers::new();
                    d.response_headers_access = Access::None;
                }
                d.request_body.clear();
                d.response_body.clear();
            });
            let alive = self.created
                && !self.filter_absent
                && ctx.vm.as_ref().is_some_and(|vm| vm.failed.is_none());
            if alive {
                for (name, callback) in [
                    ("proxy_on_log", Callback::Log),
                    ("proxy_on_done", Callback::Done),
                    ("proxy_on_delete", Callback::Delete),
                ] {
                    self.callbacks.push(callback);
                    let id = self.id as i32;
                    let result = ctx
                        .vm
                        .as_deref_mut()
                        .map(|vm| vm.call(name, self.id, &[id]));
                    if let Some(Err(failure)) = result {
                        if self.failure.is_none() {
                            self.failure = Some(failure);
                        }
                        break;
                    }
                }
            }
        }
        let filter_state = self
            .with_data(&mut ctx, |d| d.filter_state.clone())
            .unwrap_or_default();
        if let Some(vm) = ctx.vm.as_deref_mut() {
            vm.store.data_mut().streams.remove(&self.id);
        }
        self.exchange(ctx.vm.as_deref_mut(), filter_state)
    }

    fn exchange(&self, vm: Option<&mut Vm>, filter_state: BTreeMap<String, Vec<u8>>) -> Exchange {
        let pending = vm.map_or(0, |vm| {
            let s = vm.store.data();
            s.pending_http.len()
                + s.grpc_calls
                    .values()
                    .filter(|c| !c.cancelled && !c.streaming)
                    .count()
        });
        let outcome = if let Some(failure) = &self.failure {
            Outcome::VmFailed(failure.clone())
        } else if self.reentered {
            Outcome::Stalled(Stall {
                direction: Direction::Response,
                kind: StallKind::LocalReplyReentered,
                pending_callouts: pending,
            })
        } else if self.reset {
            Outcome::Reset
        } else if let Some(reply) = &self.local_reply {
            Outcome::LocalReply(reply.clone())
        } else if self.resp.out.end {
            Outcome::Forwarded
        } else {
            let direction = if self.req.out.end {
                Direction::Response
            } else {
                Direction::Request
            };
            let pipe = match direction {
                Direction::Request => &self.req,
                Direction::Response => &self.resp,
            };
            Outcome::Stalled(Stall {
                direction,
                kind: if pipe.iteration == Iteration::StopAll {
                    StallKind::StopAllIteration
                } else {
                    StallKind::Paused
                },
                pending_callouts: pending,
            })
        };
        let upstream = UpstreamView {
            headers: self.req.out.headers.clone(),
            body: self.req.out.body.clone(),
            trailers: self.req.out.trailers.clone(),
            complete: self.req.out.end,
            reset: self.upstream_reset,
        };
        let response = self
            .resp
            .out
            .headers
            .as_ref()
            .map(|headers| ClientResponse {
                status: headers
                    .get(":status")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
                headers: headers.clone(),
                body: self.resp.out.body.clone(),
                frames: self.resp.out.frames.clone(),
                trailers: self.resp.out.trailers.clone(),
                complete: self.resp.out.end && !self.reset,
            });
        Exchange {
            outcome,
            upstream,
            response,
            callbacks: self.callbacks.clone(),
            module_time: self.module_time,
            filter_state,
            context_id: self.id,
            worker: self.worker,
        }
    }

    /// Records a VM failure that happened outside this stream's callbacks.
    pub fn vm_failed(&mut self, failure: VmFailure, policy: FailurePolicy) {
        if !self.done() {
            self.on_failure(failure, policy);
        }
    }

    /// Records a callout callback made on behalf of this stream.
    pub fn record(&mut self, callback: Callback) {
        self.callbacks.push(callback);
    }

    /// Makes a driver context (for `send_local_reply` from outside a stream callback).
    pub fn ctx<'a>(vm: Option<&'a mut Vm>, policy: FailurePolicy, allow_stop: bool) -> Ctx<'a> {
        Ctx {
            vm,
            policy,
            allow_stop,
        }
    }
}

/// What a delivery needs from the worker.
pub(crate) struct Ctx<'a> {
    vm: Option<&'a mut Vm>,
    policy: FailurePolicy,
    allow_stop: bool,
}
