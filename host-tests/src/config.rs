//! The plugin configuration: what an Envoy `envoy.filters.http.wasm` filter block says,
//! plus the host's own knobs (workers, clock, responders).

use std::collections::BTreeSet;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use crate::abi::LogLevel;
use crate::callouts::{ForeignFunction, GrpcResponder, HttpResponder};
use crate::clock::VirtualClock;
use crate::logs::{LogSink, VmRole};
use crate::metrics::Metrics;
use crate::properties::Properties;
use crate::shared_data::{SharedData, SharedQueues};

/// What happens to requests once a VM has failed (Envoy's `failure_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    /// `FAIL_CLOSED` (the default): every request on that worker gets a 503 local reply.
    #[default]
    FailClosed,
    /// `FAIL_OPEN`: the filter is skipped; requests pass untouched.
    FailOpen,
    /// `FAIL_RELOAD`: the failing request gets a 503; the next request on that worker
    /// recreates the VM (initialize, start, configure) and uses it.
    FailReload,
}

/// The plugin and VM settings the module sees.
#[derive(Debug, Clone)]
pub struct PluginConfig {
    /// `name` (property `plugin_name`).
    pub name: String,
    /// `root_id` (property `plugin_root_id`).
    pub root_id: String,
    /// `vm_config.vm_id` (property `plugin_vm_id`): the shared-data namespace.
    pub vm_id: String,
    /// `configuration` as the module reads it (a StringValue arrives unwrapped).
    pub configuration: Vec<u8>,
    /// `vm_config.configuration`.
    pub vm_configuration: Vec<u8>,
    /// `allow_on_headers_stop_iteration`.
    pub allow_on_headers_stop_iteration: bool,
    /// `failure_policy`.
    pub failure_policy: FailurePolicy,
    /// What `proxy_get_log_level` reports (Envoy's default is info).
    pub log_level: LogLevel,
    /// Clusters that exist (callouts to others get `BAD_ARGUMENT` / `PARSE_FAILURE`).
    pub clusters: BTreeSet<String>,
    /// Properties every context sees (e.g. `node`, `listener_metadata`).
    pub properties: Properties,
    /// `vm_config.environment_variables` (WASI environment).
    pub environment: Vec<(String, String)>,
    /// Seed of the VMs' randomness (VM `n` uses `seed + n`).
    pub random_seed: u64,
    /// Whether the host adds `x-request-id` and `x-forwarded-proto` to requests that
    /// lack them, as Envoy's connection manager does before any filter runs.
    pub connection_manager_headers: bool,
}

impl Default for PluginConfig {
    fn default() -> Self {
        PluginConfig {
            name: "plugin".into(),
            root_id: String::new(),
            vm_id: String::new(),
            configuration: Vec::new(),
            vm_configuration: Vec::new(),
            allow_on_headers_stop_iteration: false,
            failure_policy: FailurePolicy::FailClosed,
            log_level: LogLevel::Info,
            clusters: BTreeSet::new(),
            properties: Properties::new(),
            environment: Vec::new(),
            random_seed: 0x5EED,
            connection_manager_headers: true,
        }
    }
}

pub(crate) type Mailbox = Sender<crate::worker::Command>;

/// Everything the VMs of one Envoy share.
pub(crate) struct EnvoyShared {
    pub config: PluginConfig,
    pub clock: VirtualClock,
    pub shared_data: SharedData,
    pub queues: SharedQueues,
    pub metrics: Metrics,
    pub logs: LogSink,
    pub http_responder: Option<HttpResponder>,
    pub grpc_responder: Option<GrpcResponder>,
    pub foreign_functions: HashMap<String, ForeignFunction>,
    pub mailboxes: Mutex<HashMap<VmRole, Mailbox>>,
    pub request_ids: AtomicU64,
    pub module: wasmtime::Module,
}

pub(crate) type Shared = Arc<EnvoyShared>;
