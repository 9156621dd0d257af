//! The per-VM host state the hostcalls work on (wasmtime's store data).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use wasmtime::{Memory, TypedFunc};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use crate::abi::StreamType;
use crate::callouts::{GrpcCall, GrpcEvent, HttpCall, HttpCallReply};
use crate::config::Shared;
use crate::exchange::LocalReply;
use crate::headers::Headers;
use crate::logs::VmRole;
use crate::properties::Properties;

/// Whether a header map can be read or changed right now (Envoy hands the filter a map
/// only while it holds it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Access {
    /// Not available: `get_header_map_value` is `BAD_ARGUMENT` in Envoy, pairs are empty.
    #[default]
    None,
    /// Readable only (the access-log phase).
    Read,
    /// Readable and writable.
    ReadWrite,
}

/// One HTTP stream's data as the module sees it through hostcalls.
#[derive(Debug, Default)]
pub(crate) struct StreamData {
    pub request_headers: Headers,
    pub request_headers_access: Access,
    pub request_trailers: Option<Headers>,
    pub request_trailers_access: Access,
    /// The request body buffer the module sees in the current body callback.
    pub request_body: Vec<u8>,
    /// True during the last request body callback (trailers may be added then).
    pub request_end_of_stream: bool,
    pub response_headers: Headers,
    pub response_headers_access: Access,
    pub response_trailers: Option<Headers>,
    pub response_trailers_access: Access,
    pub response_body: Vec<u8>,
    pub response_end_of_stream: bool,
    /// Properties of this request.
    pub properties: Properties,
    /// `proxy_set_property` values, keyed `wasm.<path>`.
    pub filter_state: BTreeMap<String, Vec<u8>>,
    /// The access-log phase (`on_log`): missing maps read as absent values.
    pub log_phase: bool,
}

/// Something to do once the current callback has returned.
#[derive(Debug, Clone)]
pub(crate) enum AfterCall {
    LocalReply { context_id: u32, reply: LocalReply },
    Continue { context_id: u32, stream: StreamType },
    Close { context_id: u32, stream: StreamType },
}

/// A callout answer waiting to be delivered.
#[derive(Debug, Clone)]
pub(crate) enum Ready {
    Http { token: u32, reply: HttpCallReply },
    Grpc { token: u32, event: GrpcEvent },
}

/// The data of an HTTP callout response while `proxy_on_http_call_response` runs.
#[derive(Debug, Default, Clone)]
pub(crate) struct CallResponse {
    pub headers: Headers,
    pub body: Vec<u8>,
    pub trailers: Headers,
}

/// The store data of one VM.
pub(crate) struct HostState {
    pub wasi: WasiP1Ctx,
    pub shared: Shared,
    pub role: VmRole,
    pub stdout: MemoryOutputPipe,
    pub stderr: MemoryOutputPipe,
    pub stdout_seen: usize,
    pub stderr_seen: usize,
    /// During `_initialize`/`main`: only logging and WASI are allowed.
    pub restricted: bool,
    /// The callback running now (for messages).
    pub callback: &'static str,
    pub current_context: u32,
    pub effective_context: u32,
    pub root_context: u32,
    /// Whether the plugin configuration buffer is readable (during `on_configure`).
    pub configuring: bool,
    pub next_context_id: u32,
    pub streams: HashMap<u32, StreamData>,
    pub after_call: Vec<AfterCall>,
    pub ready: VecDeque<Ready>,
    pub next_token: u32,
    pub http_calls: BTreeMap<u32, HttpCall>,
    pub pending_http: BTreeMap<u32, HttpCall>,
    pub grpc_calls: BTreeMap<u32, GrpcCall>,
    pub call_response: Option<CallResponse>,
    pub grpc_initial_metadata: Option<Headers>,
    pub grpc_trailing_metadata: Option<Headers>,
    pub grpc_message: Option<Vec<u8>>,
    pub status: (u32, Vec<u8>),
    pub tick_period: Option<Duration>,
    pub next_tick_nanos: u64,
    pub metric_ids: HashMap<u32, String>,
    pub next_metric_seq: u32,
    /// A trap raised by a hostcall (its message), until the failure is recorded.
    pub host_trap: Option<String>,
    /// The last critical log line (the SDK reports panics there).
    pub last_critical: Option<String>,
    /// Whether the root context is shutting down and may call `proxy_done`.
    pub root_pending_done: bool,
    pub root_done_called: bool,
    /// The module's exported memory, found once after instantiation (as cpp-host keeps
    /// it): hostcalls reach it without a lookup by name.
    pub memory: Option<Memory>,
    /// The module's allocator (`proxy_on_memory_allocate`, else `malloc`), resolved once
    /// after instantiation like cpp-host's `malloc_`.
    pub allocator: Option<TypedFunc<i32, i32>>,
}

impl HostState {
    /// The context hostcalls act on: the effective context if set and alive, else the
    /// current one.
    pub fn context(&self) -> u32 {
        if self.effective_context != 0
            && (self.effective_context == self.root_context
                || self.streams.contains_key(&self.effective_context))
        {
            self.effective_context
        } else {
            self.current_context
        }
    }

    /// The stream data of the acting context, if it is a stream.
    pub fn stream_mut(&mut self) -> Option<&mut StreamData> {
        let id = self.context();
        self.streams.get_mut(&id)
    }

    /// Whether `id` is a live context of this VM.
    pub fn has_context(&self, id: u32) -> bool {
        id == self.root_context || self.streams.contains_key(&id)
    }

    /// The next callout token (shared by HTTP and gRPC, never 0).
    pub fn token(&mut self) -> u32 {
        self.next_token = self.next_token.wrapping_add(1).max(1);
        self.next_token
    }
}
