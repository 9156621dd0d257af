//! [`Envoy`]: one Envoy process with one wasm HTTP filter plugin, its configuration
//! canary and its worker VMs.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::abi::{LogLevel, Status};
use crate::callouts::{
    ForeignFunction, GrpcCall, GrpcEvent, GrpcResponder, HttpCall, HttpCallReply, HttpResponder,
};
use crate::clock::VirtualClock;
use crate::config::{EnvoyShared, FailurePolicy, PluginConfig};
use crate::exchange::VmFailure;
use crate::logs::{LogLine, LogSink, VmRole};
use crate::metrics::Metrics;
use crate::properties::PropertyValue;
use crate::shared_data::{SharedData, SharedQueues};
use crate::vm::{load_module, Vm};
use crate::worker::Worker;

/// Builds an [`Envoy`]: the plugin configuration and the host's knobs.
pub struct EnvoyBuilder {
    wasm: PathBuf,
    config: PluginConfig,
    workers: usize,
    clock: Option<VirtualClock>,
    start_time: Option<SystemTime>,
    http_responder: Option<HttpResponder>,
    grpc_responder: Option<GrpcResponder>,
    foreign_functions: HashMap<String, ForeignFunction>,
    shared_data: Option<SharedData>,
}

impl EnvoyBuilder {
    /// The plugin `configuration` (what `on_configure` reads).
    pub fn configuration(mut self, configuration: impl Into<Vec<u8>>) -> Self {
        self.config.configuration = configuration.into();
        self
    }

    /// `vm_config.configuration` (what `on_vm_start` reads).
    pub fn vm_configuration(mut self, configuration: impl Into<Vec<u8>>) -> Self {
        self.config.vm_configuration = configuration.into();
        self
    }

    /// The plugin `name` (default `plugin`).
    pub fn name(mut self, name: &str) -> Self {
        self.config.name = name.into();
        self
    }

    /// The plugin `root_id` (default empty).
    pub fn root_id(mut self, root_id: &str) -> Self {
        self.config.root_id = root_id.into();
        self
    }

    /// `vm_config.vm_id` (default empty, as Istio leaves it).
    pub fn vm_id(mut self, vm_id: &str) -> Self {
        self.config.vm_id = vm_id.into();
        self
    }

    /// Number of worker threads, one VM each (default 1).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// `allow_on_headers_stop_iteration: true`.
    pub fn allow_on_headers_stop_iteration(mut self, allow: bool) -> Self {
        self.config.allow_on_headers_stop_iteration = allow;
        self
    }

    /// `failure_policy` (default fail closed).
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.config.failure_policy = policy;
        self
    }

    /// What `proxy_get_log_level` reports (default info, Envoy's default).
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.config.log_level = level;
        self
    }

    /// Declares a cluster callouts may use.
    pub fn cluster(mut self, name: &str) -> Self {
        self.config.clusters.insert(name.into());
        self
    }

    /// A property every context sees (e.g. `["node", "id"]`).
    pub fn property<S: AsRef<str>>(mut self, path: &[S], value: impl Into<PropertyValue>) -> Self {
        self.config.properties.set(path, value);
        self
    }

    /// A WASI environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.config.environment.push((key.into(), value.into()));
        self
    }

    /// The seed of the VMs' randomness.
    pub fn random_seed(mut self, seed: u64) -> Self {
        self.config.random_seed = seed;
        self
    }

    /// Where the virtual wall clock starts (default 2026-01-01T00:00:00Z).
    pub fn start_time(mut self, at: SystemTime) -> Self {
        self.start_time = Some(at);
        self
    }

    /// Shares a clock with another Envoy.
    pub fn clock(mut self, clock: VirtualClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Whether the host adds `x-request-id` / `x-forwarded-proto` (default true).
    pub fn connection_manager_headers(mut self, add: bool) -> Self {
        self.config.connection_manager_headers = add;
        self
    }

    /// Answers HTTP callouts as they are made (`None` leaves one pending).
    pub fn http_responder(
        mut self,
        f: impl Fn(&HttpCall) -> Option<HttpCallReply> + Send + Sync + 'static,
    ) -> Self {
        self.http_responder = Some(Arc::new(f));
        self
    }

    /// Answers unary gRPC calls as they are made.
    pub fn grpc_responder(
        mut self,
        f: impl Fn(&GrpcCall) -> Option<Vec<GrpcEvent>> + Send + Sync + 'static,
    ) -> Self {
        self.grpc_responder = Some(Arc::new(f));
        self
    }

    /// Registers a foreign function (`proxy_call_foreign_function`).
    pub fn foreign_function(
        mut self,
        name: &str,
        f: impl Fn(&[u8]) -> Result<Vec<u8>, Status> + Send + Sync + 'static,
    ) -> Self {
        self.foreign_functions.insert(name.into(), Arc::new(f));
        self
    }

    /// Uses an existing shared-data store (e.g. to restart a plugin on the same Envoy).
    pub fn shared_data(mut self, store: SharedData) -> Self {
        self.shared_data = Some(store);
        self
    }

    /// Loads the module and starts Envoy as it does: the base VM (`_initialize`/`main`),
    /// the configuration canary (initialize, root context, `on_vm_start`,
    /// `on_configure`, then killed; a false or a trap rejects the plugin), then one VM per
    /// worker thread, each initialized, started and configured.
    pub fn start(self) -> Result<Envoy, StartError> {
        let module = load_module(&self.wasm).map_err(StartError::Load)?;
        let clock = self.clock.unwrap_or_else(|| match self.start_time {
            Some(at) => VirtualClock::starting_at(at),
            None => VirtualClock::default(),
        });
        let logs = LogSink::default();
        let shared = Arc::new(EnvoyShared {
            config: self.config,
            clock,
            shared_data: self.shared_data.unwrap_or_default(),
            queues: SharedQueues::default(),
            metrics: Metrics::default(),
            logs: logs.clone(),
            http_responder: self.http_responder,
            grpc_responder: self.grpc_responder,
            foreign_functions: self.foreign_functions,
            mailboxes: Mutex::new(HashMap::new()),
            request_ids: Default::default(),
            module,
        });
        let fail = |failure: VmFailure| StartError::VmFailed {
            failure,
            logs: logs.all(),
        };
        // The base VM: loaded and initialized, never configured.
        let mut base = Vm::instantiate(&shared, VmRole::Base).map_err(fail)?;
        base.initialize().map_err(fail)?;
        // The configuration canary.
        let mut canary = Vm::instantiate(&shared, VmRole::Canary).map_err(fail)?;
        canary.initialize().map_err(fail)?;
        if !canary.start().map_err(fail)? {
            return Err(StartError::Rejected {
                reason: "proxy_on_vm_start returned false".into(),
                logs: logs.all(),
            });
        }
        if !canary.configure().map_err(fail)? {
            return Err(StartError::Rejected {
                reason: "proxy_on_configure returned false".into(),
                logs: logs.all(),
            });
        }
        drop(canary);
        let mut workers = Vec::with_capacity(self.workers);
        let mut boot_failures = Vec::new();
        for index in 0..self.workers {
            let (worker, boot) = Worker::spawn(index, Arc::clone(&shared));
            if let Err(failure) = boot {
                boot_failures.push((index, failure));
            }
            workers.push(worker);
        }
        Ok(Envoy {
            shared,
            workers,
            base: Some(base),
            boot_failures,
        })
    }
}

/// Why a plugin did not start.
#[derive(Debug)]
pub enum StartError {
    /// The module could not be read or compiled.
    Load(String),
    /// The configuration canary said no (`on_configure` or `on_vm_start` returned false):
    /// Envoy rejects the plugin.
    Rejected {
        /// Which answer was false.
        reason: String,
        /// Everything logged until then (the module's reasons are usually here).
        logs: Vec<LogLine>,
    },
    /// A VM trapped while starting.
    VmFailed {
        /// The trap.
        failure: VmFailure,
        /// Everything logged until then.
        logs: Vec<LogLine>,
    },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Load(e) => write!(f, "cannot load the module: {e}"),
            StartError::Rejected { reason, logs } => {
                write!(f, "plugin rejected: {reason}")?;
                for line in logs {
                    write!(f, "\n  {line}")?;
                }
                Ok(())
            }
            StartError::VmFailed { failure, logs } => {
                write!(f, "{failure}")?;
                for line in logs {
                    write!(f, "\n  {line}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for StartError {}

/// An Envoy with one wasm plugin: its workers, shared data, stats, logs and clock.
pub struct Envoy {
    shared: Arc<EnvoyShared>,
    workers: Vec<Worker>,
    base: Option<Vm>,
    boot_failures: Vec<(usize, VmFailure)>,
}

impl Envoy {
    /// A builder for the module at `wasm` (see [`crate::modules`] to find or build one).
    pub fn builder(wasm: impl AsRef<Path>) -> EnvoyBuilder {
        EnvoyBuilder {
            wasm: wasm.as_ref().to_path_buf(),
            config: PluginConfig::default(),
            workers: 1,
            clock: None,
            start_time: None,
            http_responder: None,
            grpc_responder: None,
            foreign_functions: HashMap::new(),
            shared_data: None,
        }
    }

    /// Worker `index` (panics if there is no such worker: a test bug).
    #[allow(clippy::indexing_slicing)]
    pub fn worker(&self, index: usize) -> &Worker {
        &self.workers[index]
    }

    /// Every worker.
    pub fn workers(&self) -> &[Worker] {
        &self.workers
    }

    /// Workers whose VM failed to boot (configure false or a trap), with why.
    pub fn boot_failures(&self) -> &[(usize, VmFailure)] {
        &self.boot_failures
    }

    /// The plugin configuration in force.
    pub fn config(&self) -> &PluginConfig {
        &self.shared.config
    }

    /// The shared-data store (all vm_ids).
    pub fn shared_data(&self) -> &SharedData {
        &self.shared.shared_data
    }

    /// A shared-data value of this plugin's vm_id.
    pub fn shared_value(&self, key: &str) -> Option<Vec<u8>> {
        self.shared
            .shared_data
            .value(&self.shared.config.vm_id, key)
    }

    /// The keys of this plugin's vm_id.
    pub fn shared_keys(&self) -> Vec<String> {
        self.shared.shared_data.keys(&self.shared.config.vm_id)
    }

    /// The shared queues.
    pub fn queues(&self) -> &SharedQueues {
        &self.shared.queues
    }

    /// The stats store.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Captured log lines.
    pub fn logs(&self) -> &LogSink {
        &self.shared.logs
    }

    /// The virtual clock.
    pub fn clock(&self) -> &VirtualClock {
        &self.shared.clock
    }

    /// Advances virtual time and fires every tick that falls due, on every worker.
    pub fn advance_time(&self, by: Duration) {
        // Step so that each worker's due ticks fire in order even for long jumps.
        self.shared.clock.advance(by);
        for worker in &self.workers {
            worker.fire_ticks();
        }
    }

    /// Whether the base VM is still loaded (it is, for the life of the plugin).
    pub fn has_base_vm(&self) -> bool {
        self.base.is_some()
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        if let Ok(mut mailboxes) = self.shared.mailboxes.lock() {
            mailboxes.clear();
        }
        self.workers.clear();
    }
}
