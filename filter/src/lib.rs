//! Toolgate as a proxy-wasm HTTP filter: thin glue between Envoy and the engine.
//!
//! Each request moves through an explicit [`Stage`]: the head decides whether to inspect,
//! the body is buffered to its end (trailers included) before anything goes upstream, then
//! the request is forwarded or answered locally. Every host call goes through [`abi`],
//! where statuses become typed errors; any error fails closed.

mod abi;
mod exports;
mod headers;
mod metrics;
#[cfg(any(target_arch = "wasm32", test))]
mod small_blocks;

use abi::{HostError, Level};
use exports::Action;
use metrics::Metrics;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use toolgate_engine::config;
use toolgate_engine::json::Validator;
use toolgate_engine::listing::{unfilterable, PendingList};
use toolgate_engine::outcome::{CallOutcome, Forward, Outcome, Rejection, Report, Verdict};
use toolgate_engine::ratelimit::{CasStore, Clock, SetOutcome, StoreError};
use toolgate_engine::sse::SseFilter;
use toolgate_engine::{
    namespace, reply, rls, Attributes, Consultation, Engine, Head, RequestInfo, ResponseMode,
    ServiceAnswer,
};

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: small_blocks::SmallBlocks = small_blocks::SmallBlocks::new();

/// Proxy-wasm shared data as the engine's CAS store.
struct SharedData;

fn store_error(e: HostError) -> StoreError {
    match e {
        HostError::NotFound => StoreError("shared data: not found"),
        HostError::BadArgument => StoreError("shared data: bad argument"),
        HostError::CasMismatch => StoreError("shared data: unexpected CAS mismatch"),
        HostError::Status(_) => StoreError("shared data: host failure"),
    }
}

impl CasStore for SharedData {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        abi::shared_get(key).map_err(store_error)
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<SetOutcome, StoreError> {
        match abi::shared_set(key, value, cas) {
            Ok(()) => Ok(SetOutcome::Written),
            Err(HostError::CasMismatch) => Ok(SetOutcome::CasMismatch),
            Err(e) => Err(store_error(e)),
        }
    }
}

/// The host's wall clock. A failing clock reads as 0, which can only count into an old
/// window that every real slot is past: calls are then limited, never freed.
struct HostClock;

impl Clock for HostClock {
    fn now_nanos(&self) -> u64 {
        abi::now_nanos().unwrap_or(0)
    }
}

/// Envoy attributes.
struct HostAttributes;

impl Attributes for HostAttributes {
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        abi::property(path).ok().flatten()
    }
}

/// What one VM shares between its streams.
struct Shared {
    engine: Engine,
    metrics: Metrics,
    validator: RefCell<Validator>,
}

#[derive(Default)]
struct Root {
    shared: Option<Rc<Shared>>,
}

fn random_salt() -> [u8; 16] {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // Without randomness the salt is still secret-free but unpredictable enough to
        // differ per start; the configured hash_salt is mixed in as well.
        let t = abi::now_nanos().unwrap_or(0).to_le_bytes();
        for (d, s) in b.iter_mut().zip(t.iter().cycle()) {
            *d = *s;
        }
    }
    b
}

impl Root {
    /// Loads the plugin configuration; `false` tells the host it is unusable.
    fn on_configure(&mut self) -> bool {
        let document = match abi::buffer(abi::Buffer::PluginConfiguration, 0, usize::MAX >> 1) {
            Ok(d) => d,
            Err(HostError::NotFound) => Vec::new(),
            Err(e) => {
                abi::log_parts(
                    Level::Error,
                    &[
                        "toolgate: configuration: cannot read it (",
                        &e.describe(),
                        ")",
                    ],
                );
                return false;
            }
        };
        let config = match config::load(&document) {
            Ok(c) => c,
            Err(problems) => {
                for p in problems {
                    // A problem of the whole document is already named `configuration`.
                    let p = p.text();
                    let sep = if p.as_bytes().starts_with(b"configuration:") {
                        ""
                    } else {
                        "configuration: "
                    };
                    abi::log_parts(Level::Error, &["toolgate: ", sep, &p]);
                }
                return false;
            }
        };
        let plugin = abi::property(&["plugin_name"])
            .ok()
            .flatten()
            .and_then(|n| String::from_utf8(n).ok())
            .unwrap_or_default();
        let ns = namespace(&config, &plugin);
        match Engine::new(config, &ns, &SharedData, random_salt()) {
            Ok(engine) => {
                self.shared = Some(Rc::new(Shared {
                    metrics: Metrics::new(engine.policy()),
                    engine,
                    validator: RefCell::new(Validator::new()),
                }));
                true
            }
            Err(e) => {
                abi::log_parts(
                    Level::Error,
                    &[
                        "toolgate: configuration: counters cannot be prepared in shared data: ",
                        e.0,
                    ],
                );
                false
            }
        }
    }

    /// A request stream of this plugin, with context id `id`.
    fn create_stream(&mut self, id: u32) -> Stream {
        Stream {
            id,
            shared: self.shared.clone(),
            stage: Stage::Head,
            response: Response::Pass,
            body_len: 0,
        }
    }
}

/// Where a request is in its life.
enum Stage {
    /// Waiting for the request head.
    Head,
    /// Not inspected: everything passes.
    Pass,
    /// A GET passed on: an event stream answering it is watched for answers to rewritten
    /// 2024-11-05 transport messages.
    Watching,
    /// Buffering the body to its end before deciding.
    Buffering(RequestInfo),
    /// Waiting for the rate limit service's answer to gRPC call `token`.
    Consulting(Box<Consultation>, u32),
    /// Forwarded; the response may carry rate-limit state and need list filtering.
    Forwarded(Forward),
    /// Answered locally; nothing more goes upstream.
    Answered,
}

/// How the response is being handled.
enum Response {
    /// Untouched.
    Pass,
    /// A JSON answer, read to its end, then filtered.
    Json(JsonAnswer),
    /// An event stream, filtered event by event.
    Sse(SseFilter),
    /// Replaced by this body (an error in place of a list that cannot be filtered, or a
    /// denial in place of the answer to the ping it travelled as).
    Replace(String),
}

/// A JSON answer being read to its end. The module takes it out of the stream chunk by
/// chunk (Envoy holds none of it, so its connection buffer limit, 1 MiB by default and
/// 32 KiB in Envoy Gateway, never cuts a larger answer short) and writes it back whole at
/// its end; `max_response_bytes` bounds it. An answer in one chunk is filtered in place.
struct JsonAnswer {
    /// The list answers awaited.
    lists: Vec<PendingList>,
    /// The ids of the requests answered (see [`unfilterable`]).
    ids: Vec<String>,
    /// What the module has taken out of the stream so far.
    taken: Vec<u8>,
}

/// Counts and logs an answer withheld because it could not be checked.
fn withheld(shared: &Shared, why: &str) {
    shared.metrics.list_unfilterable();
    abi::log_parts(Level::Warn, &["toolgate: a response was withheld: ", why]);
}

struct Stream {
    /// The host's context id.
    id: u32,
    /// `None` when the configuration never loaded: every request is refused.
    shared: Option<Rc<Shared>>,
    stage: Stage,
    response: Response,
    /// The length of the body the decision read (what a rewrite replaces).
    body_len: usize,
}

impl Stream {
    /// A stream without a configured plugin: it refuses every request.
    fn orphan(id: u32) -> Stream {
        Stream {
            id,
            shared: None,
            stage: Stage::Head,
            response: Response::Pass,
            body_len: 0,
        }
    }

    /// The rate limit service answered call `token` (status 0) or failed.
    fn on_grpc_response(&mut self, token: u32, status: u32, size: usize) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let consultation = match std::mem::replace(&mut self.stage, Stage::Pass) {
            Stage::Consulting(c, t) if t == token => c,
            other => {
                self.stage = other;
                return;
            }
        };
        let message = if status == 0 {
            abi::buffer(abi::Buffer::GrpcReceive, 0, size)
                .map_err(|e| ["the response could not be read (", &e.describe(), ")"].concat())
        } else {
            Err(format!("gRPC status {status}"))
        };
        let answer = match &message {
            Ok(bytes) => ServiceAnswer::Response(bytes),
            Err(why) => ServiceAnswer::Failed(why.clone()),
        };
        let outcome = shared.engine.resume(*consultation, answer, &SharedData);
        if self.apply(&shared, outcome) == Action::Continue {
            if let Err(e) = abi::continue_request() {
                abi::log_parts(
                    Level::Error,
                    &["toolgate: cannot resume the request (", &e.describe(), ")"],
                );
            }
        }
    }

    /// Logs, counts and records the decision, then forwards or answers.
    fn apply(&mut self, shared: &Shared, outcome: Outcome) -> Action {
        if let Verdict::Consult(c) = outcome.verdict {
            // Nothing is decided yet: the report comes with the service's answer.
            return self.consult(shared, c);
        }
        report(shared, &outcome.report);
        match outcome.verdict {
            Verdict::Consult(c) => self.consult(shared, c),
            Verdict::Forward(mut forward) => {
                if let Some(body) = forward.body.take() {
                    // A denied call whose rewrite failed must not go on as it is.
                    if abi::set_buffer(abi::Buffer::RequestBody, 0, self.body_len, &body).is_err() {
                        return self.unavailable();
                    }
                }
                self.stage = Stage::Forwarded(forward);
                Action::Continue
            }
            Verdict::Respond(r) => {
                let details = if outcome.report.rejection.is_some() {
                    "toolgate_rejected"
                } else {
                    "toolgate_denied"
                };
                if let Err(e) =
                    abi::send_local_response(r.status, details, r.body.as_bytes(), &r.headers)
                {
                    abi::log_parts(
                        Level::Error,
                        &["toolgate: cannot answer the request (", &e.describe(), ")"],
                    );
                }
                self.stage = Stage::Answered;
                Action::Pause
            }
        }
    }

    /// Asks the rate limit service and pauses the request until it answers.
    fn consult(&mut self, shared: &Shared, c: Box<Consultation>) -> Action {
        let upstream = String::from_utf8(c.upstream.clone()).unwrap_or_default();
        let timeout = Duration::from_millis(u64::from(c.timeout_ms));
        match abi::grpc_call(&upstream, rls::SERVICE, rls::METHOD, &c.message, timeout) {
            Ok(token) => {
                exports::register_call(token, self.id);
                self.stage = Stage::Consulting(c, token);
                Action::Pause
            }
            Err(e) => {
                let why = ["the call could not be started (", &e.describe(), ")"].concat();
                let outcome = shared
                    .engine
                    .resume(*c, ServiceAnswer::Failed(why), &SharedData);
                self.apply(shared, outcome)
            }
        }
    }

    /// Answers without an engine (the configuration never loaded): fail closed.
    fn unavailable(&mut self) -> Action {
        let r = reply::rejection(
            Rejection::InvalidRequest,
            "the Toolgate filter is not configured",
        );
        let _ =
            abi::send_local_response(503, "toolgate_unconfigured", r.body.as_bytes(), &r.headers);
        self.stage = Stage::Answered;
        Action::Pause
    }

    fn decide(&mut self, shared: &Shared, info: &RequestInfo, body: &[u8]) -> Action {
        let outcome = match shared.validator.try_borrow_mut() {
            Ok(mut v) => shared
                .engine
                .decide(info, body, &SharedData, &HostClock, &mut v),
            Err(_) => {
                shared
                    .engine
                    .decide(info, body, &SharedData, &HostClock, &mut Validator::new())
            }
        };
        self.apply(shared, outcome)
    }

    fn finish_body(&mut self, shared: &Shared, size: usize) -> Action {
        let info = match std::mem::replace(&mut self.stage, Stage::Pass) {
            Stage::Buffering(info) => info,
            other => {
                self.stage = other;
                return Action::Continue;
            }
        };
        let max = shared.engine.config().settings.max_body_bytes;
        match abi::buffer(abi::Buffer::RequestBody, 0, size.min(max.saturating_add(1))) {
            Ok(body) => {
                self.body_len = body.len();
                self.decide(shared, &info, &body)
            }
            // No buffered body at all: an empty body.
            Err(HostError::NotFound) => self.decide(shared, &info, &[]),
            Err(e) => {
                abi::log_parts(
                    Level::Error,
                    &[
                        "toolgate: cannot read the request body (",
                        &e.describe(),
                        ")",
                    ],
                );
                let outcome = shared.engine.refuse_unreadable(&info);
                self.apply(shared, outcome)
            }
        }
    }
}

fn report(shared: &Shared, report: &Report) {
    shared.metrics.record(report);
    // Only refusals are logged: an allowed call formats nothing.
    let grant = || {
        report
            .grant
            .map_or_else(|| "-".to_string(), toolgate_engine::hash::hex16)
    };
    let request_id = report.request_id.as_deref().unwrap_or("-");
    let verb = if report.shadow { "shadow_" } else { "" };
    if let Some((kind, detail)) = &report.rejection {
        abi::log_parts(
            Level::Info,
            &[
                "toolgate: ",
                verb,
                "rejected reason=",
                kind.code(),
                " detail=",
                &reply::quoted(detail),
                " grant=",
                &grant(),
                " request_id=",
                request_id,
            ],
        );
    }
    if let Some(e) = &report.store_error {
        abi::log_parts(
            Level::Warn,
            &[
                "toolgate: counter store failure (",
                e,
                "); failing closed request_id=",
                request_id,
            ],
        );
    }
    for c in &report.calls {
        if let CallOutcome::Denied {
            reason,
            rule,
            counter,
        } = &c.outcome
        {
            abi::log_parts(
                Level::Info,
                &[
                    "toolgate: ",
                    verb,
                    "denied ",
                    c.kind.noun(),
                    "=",
                    &reply::quoted(&c.name),
                    " reason=",
                    reason.code(),
                    " rule=",
                    rule,
                    " counter=",
                    counter.as_deref().unwrap_or("-"),
                    " grant=",
                    &grant(),
                    " request_id=",
                    request_id,
                ],
            );
        }
    }
    let _ = abi::set_property(&["toolgate.decision"], report.summary().as_bytes());
}

/// What a response answers, which decides how it is read.
#[derive(Clone, Copy)]
enum Answering {
    /// A request with list responses to filter.
    Lists,
    /// A forwarded request awaiting no list.
    Other,
    /// A watched GET stream.
    Stream,
}

/// How the response whose headers are at hand must be handled, given what it answers.
fn response_mode(shared: &Shared, answering: Answering) -> ResponseMode {
    let raw = abi::header_pairs(abi::Map::ResponseHeaders).unwrap_or_default();
    let pairs = headers::decode(&raw).unwrap_or_default();
    let get = |name: &[u8]| {
        pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    let encoding = pairs
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(b"content-encoding"))
        .find(|(_, v)| !toolgate_engine::http::only_codings(v, &[b"identity"]))
        .map(|(_, v)| *v);
    let (status, content_type) = (get(b":status").unwrap_or(b"200"), get(b"content-type"));
    match answering {
        Answering::Lists => shared.engine.response_mode(status, content_type, encoding),
        Answering::Other => shared.engine.answer_mode(status, content_type, encoding),
        Answering::Stream => shared.engine.watch_mode(content_type, encoding),
    }
}

/// The stream callbacks, as [`exports`] routes them.
impl Stream {
    fn on_request_headers(&mut self, end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else {
            return self.unavailable();
        };
        let raw = match abi::header_pairs(abi::Map::RequestHeaders) {
            Ok(raw) => raw,
            Err(e) => {
                abi::log_parts(
                    Level::Error,
                    &[
                        "toolgate: cannot read request headers (",
                        &e.describe(),
                        ")",
                    ],
                );
                return self.unavailable();
            }
        };
        let Some(pairs) = headers::decode(&raw) else {
            return self.unavailable();
        };
        let method = toolgate_engine::http::pseudo_header(&pairs, ":method");
        match shared
            .engine
            .inspect_head(method, &pairs, !end_of_stream, &HostAttributes)
        {
            Head::Pass => {
                self.stage = Stage::Pass;
                Action::Continue
            }
            Head::Watch => {
                // A compressed event stream could not be watched.
                let _ = abi::remove_header(abi::Map::RequestHeaders, "accept-encoding");
                self.stage = Stage::Watching;
                Action::Continue
            }
            Head::Done(outcome) => self.apply(&shared, outcome),
            Head::Inspect(info) if end_of_stream => self.decide(&shared, &info, &[]),
            Head::Inspect(info) => {
                if info.legacy_sse {
                    // The body may be rewritten to another length (see toolgate_engine::legacy).
                    let _ = abi::remove_header(abi::Map::RequestHeaders, "content-length");
                    // A denied call goes on as a ping: the headers that mirror it (which this
                    // transport does not define) must not carry its name and arguments on.
                    for (name, _) in &pairs {
                        if toolgate_engine::mcp_headers::names_a_call(name) {
                            if let Ok(name) = std::str::from_utf8(name) {
                                let _ = abi::remove_header(abi::Map::RequestHeaders, name);
                            }
                        }
                    }
                }
                if shared.engine.hides_lists() {
                    // Any answer may hold a list to filter, which a compressed one would hide.
                    let _ = abi::remove_header(abi::Map::RequestHeaders, "accept-encoding");
                }
                self.stage = Stage::Buffering(info);
                if shared.engine.config().settings.pause_on_request_headers {
                    Action::Pause
                } else {
                    // The body is held back below; only the head may go on.
                    Action::Continue
                }
            }
        }
    }

    fn on_request_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else {
            return self.unavailable();
        };
        match &self.stage {
            Stage::Buffering(info) => {
                let max = shared.engine.config().settings.max_body_bytes;
                if size > max {
                    let outcome = shared.engine.refuse_oversize(info);
                    return self.apply(&shared, outcome);
                }
                if end_of_stream {
                    self.finish_body(&shared, size)
                } else {
                    Action::Pause
                }
            }
            Stage::Answered => Action::Pause,
            Stage::Consulting(..) => Action::Pause,
            Stage::Head | Stage::Pass | Stage::Watching | Stage::Forwarded(_) => Action::Continue,
        }
    }

    fn on_request_trailers(&mut self, count: usize) -> Action {
        let Some(shared) = self.shared.clone() else {
            return self.unavailable();
        };
        match &self.stage {
            // Trailers end the body: decide on everything buffered, unless they carry what
            // the head check reads.
            Stage::Buffering(info) => {
                if count > 0 {
                    let raw = abi::header_pairs(abi::Map::RequestTrailers);
                    let refusal = match raw.as_deref().map(headers::decode) {
                        Ok(Some(pairs)) => shared.engine.inspect_trailers(info, &pairs),
                        // Unreadable trailers cannot be judged: fail closed.
                        _ => Some(shared.engine.refuse_unreadable(info)),
                    };
                    if let Some(outcome) = refusal {
                        return self.apply(&shared, outcome);
                    }
                }
                let max = shared.engine.config().settings.max_body_bytes;
                self.finish_body(&shared, max.saturating_add(1))
            }
            Stage::Answered => Action::Pause,
            Stage::Consulting(..) => Action::Pause,
            Stage::Head | Stage::Pass | Stage::Watching | Stage::Forwarded(_) => Action::Continue,
        }
    }

    fn on_response_headers(&mut self) -> Action {
        let Some(shared) = self.shared.clone() else {
            return Action::Continue;
        };
        let max = shared.engine.config().settings.max_response_bytes;
        let map = abi::Map::ResponseHeaders;
        let (lists, ids, mode) = match std::mem::replace(&mut self.stage, Stage::Pass) {
            Stage::Forwarded(mut forward) => {
                if let Some(denial) = forward.answer.take() {
                    // The POST of a denied 2024-11-05 message: its client reads the denial on
                    // the GET stream, any other reader here (denials are answered 200).
                    let _ = abi::replace_header(map, ":status", "200");
                    let _ = abi::replace_header(map, "content-type", "application/json");
                    let _ = abi::remove_header(map, "content-encoding");
                    let _ = abi::remove_header(map, "content-length");
                    for (name, value) in &denial.headers {
                        let _ = abi::replace_header(map, name, value);
                    }
                    self.response = Response::Replace(denial.body);
                    return Action::Continue;
                }
                if !forward.held.is_empty() {
                    let status = abi::header_value(map, ":status").ok().flatten();
                    let refused = shared.engine.refused_upstream(
                        status.as_deref().unwrap_or(b"200"),
                        &mut forward,
                        &SharedData,
                    );
                    if let Err(why) = refused {
                        abi::log_parts(
                            Level::Warn,
                            &[
                                "toolgate: a count the server's refusal frees was kept (",
                                &why,
                                ")",
                            ],
                        );
                    }
                }
                for (name, value) in reply::limit_state_headers(&forward.limits)
                    .into_iter()
                    .flatten()
                {
                    let _ = abi::add_header(map, name, &value);
                }
                if !forward.lists.is_empty() {
                    let mode = response_mode(&shared, Answering::Lists);
                    (forward.lists, forward.ids, mode)
                } else if shared.engine.hides_lists() {
                    let mode = response_mode(&shared, Answering::Other);
                    (Vec::new(), forward.ids, mode)
                } else {
                    return Action::Continue;
                }
            }
            Stage::Watching => (
                Vec::new(),
                Vec::new(),
                response_mode(&shared, Answering::Stream),
            ),
            // The upstream answered before the request was decided (it had the head alone,
            // in the plain arrangement): the request stays undecided and held, and the
            // response is read as one awaiting no list.
            held @ (Stage::Buffering(_) | Stage::Consulting(..)) => {
                self.stage = held;
                if !shared.engine.hides_lists() {
                    return Action::Continue;
                }
                (
                    Vec::new(),
                    Vec::new(),
                    response_mode(&shared, Answering::Other),
                )
            }
            other => {
                self.stage = other;
                return Action::Continue;
            }
        };
        self.response = match mode {
            ResponseMode::Pass => Response::Pass,
            ResponseMode::Json => Response::Json(JsonAnswer {
                lists,
                ids,
                taken: Vec::new(),
            }),
            ResponseMode::Sse => Response::Sse(SseFilter::new(lists, max).answering(ids)),
            ResponseMode::Fail => {
                withheld(&shared, "it is compressed or of an unknown type");
                let _ = abi::replace_header(map, ":status", "502");
                let _ = abi::replace_header(map, "content-type", "application/json");
                let _ = abi::remove_header(map, "content-encoding");
                Response::Replace(unfilterable(&lists, &ids))
            }
        };
        if !matches!(self.response, Response::Pass) {
            // The body changes length.
            let _ = abi::remove_header(map, "content-length");
        }
        Action::Continue
    }

    fn on_response_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else {
            return Action::Continue;
        };
        let max = shared.engine.config().settings.max_response_bytes;
        let body = abi::Buffer::ResponseBody;
        if let Response::Json(answer) = &mut self.response {
            if answer.taken.len().saturating_add(size) > max {
                withheld(&shared, "it is larger than max_response_bytes");
                self.response = Response::Replace(unfilterable(&answer.lists, &answer.ids));
            } else if !end_of_stream {
                match abi::buffer(body, 0, size) {
                    Ok(chunk) => {
                        answer.taken.extend_from_slice(&chunk);
                        // Gone from the stream: the whole answer is written at its end.
                        let _ = abi::set_buffer(body, 0, size, &[]);
                        return Action::Continue;
                    }
                    Err(HostError::NotFound) => return Action::Continue,
                    Err(e) => {
                        withheld(
                            &shared,
                            &["it cannot be read (", &e.describe(), ")"].concat(),
                        );
                        self.response = Response::Replace(unfilterable(&answer.lists, &answer.ids));
                    }
                }
            }
        }
        let rules = shared.engine.list_rules();
        match &mut self.response {
            Response::Pass => {}
            Response::Json(answer) => {
                // Chunks taken are gone from the stream: the answer is written back whole.
                let took = !answer.taken.is_empty();
                let whole = match abi::buffer(body, 0, size) {
                    Ok(chunk) if answer.taken.is_empty() => Ok(chunk),
                    Ok(chunk) => {
                        answer.taken.extend_from_slice(&chunk);
                        Ok(std::mem::take(&mut answer.taken))
                    }
                    Err(HostError::NotFound) => Ok(std::mem::take(&mut answer.taken)),
                    Err(e) => Err(e.describe()),
                };
                let filtered = whole.and_then(|b| {
                    // Awaiting no list, only a body that may hold one is read.
                    let new = if answer.lists.is_empty() && !toolgate_engine::legacy::may_answer(&b)
                    {
                        None
                    } else {
                        rules.json_body(&b, &answer.lists)?
                    };
                    Ok(new.or(took.then_some(b)))
                });
                match filtered {
                    Ok(None) => {}
                    Ok(Some(new)) => {
                        let _ = abi::set_buffer(body, 0, size, &new);
                    }
                    Err(why) => {
                        withheld(&shared, &why);
                        let replacement = unfilterable(&answer.lists, &answer.ids);
                        let _ = abi::set_buffer(body, 0, size, replacement.as_bytes());
                    }
                }
                self.response = Response::Pass;
            }
            Response::Sse(filter) => {
                let chunk = abi::buffer(body, 0, size).unwrap_or_default();
                let before = filter.withheld();
                let mut out = filter.push(&rules, &chunk);
                if end_of_stream {
                    out.extend(filter.finish(&rules));
                }
                if filter.withheld() != before {
                    withheld(
                        &shared,
                        "an event is larger than max_response_bytes or cannot be checked",
                    );
                }
                if out != chunk {
                    let _ = abi::set_buffer(body, 0, size, &out);
                }
            }
            Response::Replace(replacement) => {
                let now = if end_of_stream {
                    std::mem::take(replacement)
                } else {
                    String::new()
                };
                let _ = abi::set_buffer(body, 0, size, now.as_bytes());
            }
        }
        Action::Continue
    }

    fn on_response_trailers(&mut self) -> Action {
        // Trailers end the body. A JSON answer the module has taken out of the stream
        // cannot be written back here (no MCP transport sends trailers): it stays withheld.
        if let (Response::Json(_), Some(shared)) = (&self.response, self.shared.clone()) {
            withheld(&shared, "the answer ended with trailers");
            self.response = Response::Pass;
        }
        Action::Continue
    }
}
