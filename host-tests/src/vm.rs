//! One VM: a wasmtime instance of the module with its host state, and Envoy's calls into
//! it (lifecycle: `_initialize`, `main`, root context creation, `on_vm_start`,
//! `on_configure`; then any callback).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use wasmtime::{Config, Engine, Extern, Instance, Linker, Module, Store, Val};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::WasiCtxBuilder;

use crate::abi::LogLevel;
use crate::clock::{seeded_rng, MonotonicClock, WallClock};
use crate::config::Shared;
use crate::exchange::VmFailure;
use crate::logs::{LogLine, VmRole};
use crate::state::HostState;

/// The process-wide engine (`HOST_PERFMAP` set: wasmtime writes a perf map of JIT code).
pub(crate) fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        if std::env::var_os("HOST_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        Engine::new(&config).unwrap_or_else(|_| Engine::default())
    })
}

type ModuleKey = (PathBuf, Option<SystemTime>, u64);

/// Compiles the module at `path` once per process (recompiled if the file changes).
pub fn load_module(path: &Path) -> Result<Module, String> {
    static MODULES: OnceLock<Mutex<HashMap<ModuleKey, Module>>> = OnceLock::new();
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let key = (path.to_path_buf(), meta.modified().ok(), meta.len());
    let cache = MODULES.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(module) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(module);
    }
    let module =
        Module::from_file(engine(), path).map_err(|e| format!("{}: {e:?}", path.display()))?;
    if let Ok(mut cache) = cache.lock() {
        cache.insert(key, module.clone());
    }
    Ok(module)
}

const PIPE_CAPACITY: usize = 64 << 20;

/// A live VM.
pub(crate) struct Vm {
    pub store: Store<HostState>,
    instance: Instance,
    pub role: VmRole,
    /// Set once the VM trapped: nothing is called into it any more.
    pub failed: Option<VmFailure>,
}

impl Vm {
    /// Instantiates the module (nothing of it runs yet).
    pub fn instantiate(shared: &Shared, role: VmRole) -> Result<Vm, VmFailure> {
        let fail = |message: String| VmFailure {
            message,
            callback: "instantiate".into(),
            panic: None,
        };
        let stdout = MemoryOutputPipe::new(PIPE_CAPACITY);
        let stderr = MemoryOutputPipe::new(PIPE_CAPACITY);
        let index = match role {
            VmRole::Base => 0,
            VmRole::Canary => 1,
            VmRole::Worker(n) => 2 + n as u64,
        };
        let seed = shared.config.random_seed.wrapping_add(index);
        let mut builder = WasiCtxBuilder::new();
        builder
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .wall_clock(WallClock(shared.clock.clone()))
            .monotonic_clock(MonotonicClock(shared.clock.clone()))
            .secure_random(seeded_rng(seed))
            .insecure_random(seeded_rng(seed ^ 0xA5A5))
            .insecure_random_seed(u128::from(seed));
        for (k, v) in &shared.config.environment {
            builder.env(k, v);
        }
        let wasi = builder.build_p1();
        let state = HostState {
            wasi,
            shared: Arc::clone(shared),
            role,
            stdout,
            stderr,
            stdout_seen: 0,
            stderr_seen: 0,
            restricted: false,
            callback: "instantiate",
            current_context: 0,
            effective_context: 0,
            root_context: 1,
            configuring: false,
            next_context_id: 2,
            streams: HashMap::new(),
            after_call: Vec::new(),
            ready: Default::default(),
            next_token: 0,
            http_calls: Default::default(),
            pending_http: Default::default(),
            grpc_calls: Default::default(),
            call_response: None,
            grpc_initial_metadata: None,
            grpc_trailing_metadata: None,
            grpc_message: None,
            status: (0, Vec::new()),
            tick_period: None,
            next_tick_nanos: 0,
            metric_ids: HashMap::new(),
            next_metric_seq: 0,
            host_trap: None,
            last_critical: None,
            root_pending_done: false,
            root_done_called: false,
            memory: None,
            allocator: None,
        };
        let mut store = Store::new(engine(), state);
        let mut linker: Linker<HostState> = Linker::new(engine());
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut HostState| &mut s.wasi)
            .map_err(|e| fail(format!("linking WASI: {e}")))?;
        crate::hostcalls::link(&mut linker).map_err(|e| fail(format!("linking hostcalls: {e}")))?;
        // Imports no Envoy provides trap when called, naming themselves.
        linker
            .define_unknown_imports_as_traps(&shared.module)
            .map_err(|e| fail(format!("linking: {e}")))?;
        let instance = linker
            .instantiate(&mut store, &shared.module)
            .map_err(|e| fail(format!("instantiation failed: {e:?}")))?;
        // Resolved once, as cpp-host does; a module without them fails at the first
        // hostcall that needs them, with the hostcall named (see `memory.rs`).
        let memory = instance.get_memory(&mut store, "memory");
        let allocator = crate::memory::ALLOCATOR_EXPORTS
            .iter()
            .find_map(|name| instance.get_func(&mut store, name))
            .and_then(|f| f.typed::<i32, i32>(&store).ok());
        store.data_mut().memory = memory;
        store.data_mut().allocator = allocator;
        Ok(Vm {
            store,
            instance,
            role,
            failed: None,
        })
    }

    /// Runs `_initialize` (then `main` if exported) under the restricted-callback rule.
    pub fn initialize(&mut self) -> Result<(), VmFailure> {
        self.store.data_mut().restricted = true;
        let result = (|| {
            if self.has_export("_initialize") {
                self.call("_initialize", 0, &[])?;
                if self.has_export("main") {
                    self.call("main", 0, &[0, 0])?;
                } else if self.has_export("__main_void") {
                    self.call("__main_void", 0, &[])?;
                }
            } else if self.has_export("_start") {
                self.call("_start", 0, &[])?;
            }
            Ok(())
        })();
        self.store.data_mut().restricted = false;
        result
    }

    /// Creates the root context and runs `proxy_on_vm_start`: its answer.
    pub fn start(&mut self) -> Result<bool, VmFailure> {
        let root = self.store.data().root_context;
        self.call("proxy_on_context_create", root, &[root as i32, 0])?;
        let size = self.store.data().shared.config.vm_configuration.len() as i32;
        Ok(self
            .call("proxy_on_vm_start", root, &[root as i32, size])?
            .is_none_or(|r| r != 0))
    }

    /// Runs `proxy_on_configure` with the plugin configuration: its answer.
    pub fn configure(&mut self) -> Result<bool, VmFailure> {
        let root = self.store.data().root_context;
        let size = self.store.data().shared.config.configuration.len() as i32;
        self.store.data_mut().configuring = true;
        let result = self.call("proxy_on_configure", root, &[root as i32, size]);
        self.store.data_mut().configuring = false;
        Ok(result?.is_none_or(|r| r != 0))
    }

    /// Whether the module exports `name`.
    pub fn has_export(&mut self, name: &str) -> bool {
        self.instance.get_export(&mut self.store, name).is_some()
    }

    /// Calls an export with i32 arguments. `Ok(None)`: the export does not exist (Envoy
    /// skips such callbacks) or returns nothing. A trap fails the VM for good.
    pub fn call(
        &mut self,
        name: &'static str,
        context_id: u32,
        args: &[i32],
    ) -> Result<Option<i32>, VmFailure> {
        if let Some(failure) = &self.failed {
            return Err(failure.clone());
        }
        let Some(Extern::Func(func)) = self.instance.get_export(&mut self.store, name) else {
            return Ok(None);
        };
        {
            let state = self.store.data_mut();
            state.callback = name;
            state.current_context = context_id;
            state.effective_context = 0;
            state.host_trap = None;
            state.last_critical = None;
        }
        let ty = func.ty(&self.store);
        let params: Vec<Val> = args.iter().map(|a| Val::I32(*a)).collect();
        let mut results: Vec<Val> = ty.results().map(|_| Val::I32(0)).collect();
        let outcome = func.call(&mut self.store, &params, &mut results);
        self.drain_stdio();
        match outcome {
            Ok(()) => Ok(results.first().and_then(Val::i32)),
            Err(error) => {
                let state = self.store.data_mut();
                let message = state.host_trap.take().unwrap_or_else(|| {
                    let root = error.root_cause().to_string();
                    let top = error.to_string();
                    if top == root || top.contains(&root) {
                        top
                    } else {
                        format!("{root} ({top})")
                    }
                });
                let failure = VmFailure {
                    message,
                    callback: name.to_string(),
                    panic: state.last_critical.take(),
                };
                state.shared.logs.push(LogLine {
                    level: LogLevel::Critical,
                    message: format!("host: {failure}"),
                    vm: self.role,
                    context_id,
                    callback: name,
                });
                self.failed = Some(failure.clone());
                Err(failure)
            }
        }
    }

    /// Moves what the module wrote to stdout (info) and stderr (error) into the logs.
    fn drain_stdio(&mut self) {
        let state = self.store.data_mut();
        for (is_err, pipe) in [(false, state.stdout.clone()), (true, state.stderr.clone())] {
            let contents = pipe.contents();
            let seen = if is_err {
                &mut state.stderr_seen
            } else {
                &mut state.stdout_seen
            };
            if contents.len() <= *seen {
                continue;
            }
            let fresh = contents.get(*seen..).unwrap_or(&[]).to_vec();
            *seen = contents.len();
            let text = String::from_utf8_lossy(&fresh);
            for line in text.lines() {
                if line.is_empty() {
                    continue;
                }
                let level = if is_err {
                    LogLevel::Error
                } else {
                    LogLevel::Info
                };
                state.shared.logs.push(LogLine {
                    level,
                    message: line.to_string(),
                    vm: state.role,
                    context_id: state.current_context,
                    callback: state.callback,
                });
            }
        }
    }

    /// The size of the module's linear memory in bytes.
    pub fn memory_size(&mut self) -> usize {
        match self.instance.get_export(&mut self.store, "memory") {
            Some(Extern::Memory(memory)) => memory.data_size(&self.store),
            _ => 0,
        }
    }

    /// The root context id.
    pub fn root(&self) -> u32 {
        self.store.data().root_context
    }
}
