//! Every `env.proxy_*` import of the Rust SDK 0.2.5 (and a few more of ABI 0.2.1), with
//! Envoy's answers.
//!
//! Rules kept throughout:
//! - only statuses the SDK expects for that call are returned; where Envoy would return
//!   one the SDK does not expect (it would panic), the host traps instead, with a message
//!   naming the call and Envoy's reason;
//! - nothing calls back into the guest from here except its allocator: local replies,
//!   resumes and callout answers are queued until the current callback returns;
//! - during `_initialize`/`main` only `proxy_log` (and WASI) may be called; anything else
//!   traps with `restricted_callback`.

use std::time::Duration;

use wasmtime::{Caller, Linker};

use crate::abi::{BufferType, LogLevel, MapType, MetricType, Status, StreamType};
use crate::callouts::{GrpcCall, HttpCall};
use crate::exchange::LocalReply;
use crate::headers::{decode_pairs, split_path, Headers};
use crate::logs::LogLine;
use crate::memory::{copy_out, read, trap, write_u32, write_u64};
use crate::metrics::MetricValue;
use crate::properties::PropertyValue;
use crate::shared_data::QueueOwner;
use crate::state::{Access, AfterCall, HostState, Ready};
use crate::worker::Command;

type Ctx<'a> = Caller<'a, HostState>;
type R = wasmtime::Result<i32>;

fn ok() -> R {
    Ok(Status::Ok.code())
}

fn status(s: Status) -> R {
    Ok(s.code())
}

/// Traps when called during `_initialize`/`main`.
fn guard(caller: &mut Ctx<'_>, call: &str) -> wasmtime::Result<()> {
    if caller.data().restricted {
        return Err(trap(
            caller,
            call,
            "restricted_callback: only logging and WASI are allowed during _initialize/main",
        ));
    }
    Ok(())
}

fn u(value: i32) -> u32 {
    value as u32
}

/// Links every hostcall into `linker`.
pub(crate) fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    link_logging_and_time(linker)?;
    link_buffers(linker)?;
    link_maps(linker)?;
    link_properties(linker)?;
    link_shared(linker)?;
    link_stream_control(linker)?;
    link_callouts(linker)?;
    link_metrics(linker)?;
    link_misc(linker)?;
    Ok(())
}

fn log_line(caller: &mut Ctx<'_>, level: LogLevel, message: String) {
    let state = caller.data_mut();
    if level == LogLevel::Critical {
        state.last_critical = Some(message.clone());
    }
    let line = LogLine {
        level,
        message,
        vm: state.role,
        context_id: state.context(),
        callback: state.callback,
    };
    state.shared.logs.push(line);
}

fn link_logging_and_time(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_log",
        |mut c: Ctx<'_>, level: i32, ptr: i32, len: i32| -> R {
            const CALL: &str = "proxy_log";
            let Some(level) = LogLevel::from_abi(u(level)) else {
                return Err(trap(
                    &mut c,
                    CALL,
                    format!("log level {level} does not exist (Envoy aborts)"),
                ));
            };
            let bytes = read(&mut c, CALL, ptr, len)?;
            log_line(&mut c, level, String::from_utf8_lossy(&bytes).into_owned());
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_log_level",
        |mut c: Ctx<'_>, ret: i32| -> R {
            const CALL: &str = "proxy_get_log_level";
            guard(&mut c, CALL)?;
            let level = c.data().shared.config.log_level as u32;
            write_u32(&mut c, CALL, ret, level)?;
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut c: Ctx<'_>, ret: i32| -> R {
            const CALL: &str = "proxy_get_current_time_nanoseconds";
            guard(&mut c, CALL)?;
            let now = c.data().shared.clock.wall_nanos();
            write_u64(&mut c, CALL, ret, now)?;
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        |mut c: Ctx<'_>, period: i32| -> R {
            guard(&mut c, "proxy_set_tick_period_milliseconds")?;
            let state = c.data_mut();
            let period = Duration::from_millis(u64::from(u(period)));
            if period.is_zero() {
                state.tick_period = None;
            } else {
                state.tick_period = Some(period);
                let nanos = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX);
                state.next_tick_nanos = state.shared.clock.monotonic_nanos().saturating_add(nanos);
            }
            ok()
        },
    )?;
    Ok(())
}

/// The bytes of a buffer as Envoy exposes it now; `None` is `NOT_FOUND`.
fn buffer(state: &mut HostState, kind: BufferType) -> Option<Vec<u8>> {
    match kind {
        BufferType::HttpRequestBody => Some(
            state
                .stream_mut()
                .map(|s| s.request_body.clone())
                .unwrap_or_default(),
        ),
        BufferType::HttpResponseBody => Some(
            state
                .stream_mut()
                .map(|s| s.response_body.clone())
                .unwrap_or_default(),
        ),
        BufferType::DownstreamData | BufferType::UpstreamData | BufferType::CallData => {
            Some(Vec::new())
        }
        BufferType::HttpCallResponseBody => state.call_response.as_ref().map(|r| r.body.clone()),
        BufferType::GrpcReceiveBuffer => Some(state.grpc_message.clone().unwrap_or_default()),
        BufferType::VmConfiguration => Some(state.shared.config.vm_configuration.clone()),
        BufferType::PluginConfiguration => state
            .configuring
            .then(|| state.shared.config.configuration.clone()),
    }
}

fn link_buffers(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut c: Ctx<'_>, kind: i32, start: i32, max: i32, ret_ptr: i32, ret_size: i32| -> R {
            const CALL: &str = "proxy_get_buffer_bytes";
            guard(&mut c, CALL)?;
            let Some(kind) = BufferType::from_abi(u(kind)) else {
                return Err(trap(
                    &mut c,
                    CALL,
                    format!("buffer type {kind} does not exist (Envoy: BAD_ARGUMENT)"),
                ));
            };
            let Some(bytes) = buffer(c.data_mut(), kind) else {
                return status(Status::NotFound);
            };
            let start = u(start) as usize;
            let end = start.saturating_add(u(max) as usize).min(bytes.len());
            let slice = bytes.get(start..end).unwrap_or(&[]);
            copy_out(&mut c, CALL, slice, ret_ptr, ret_size)?;
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_buffer_status",
        |mut c: Ctx<'_>, kind: i32, len_ptr: i32, flags_ptr: i32| -> R {
            const CALL: &str = "proxy_get_buffer_status";
            guard(&mut c, CALL)?;
            let Some(kind) = BufferType::from_abi(u(kind)) else {
                return status(Status::BadArgument);
            };
            let Some(bytes) = buffer(c.data_mut(), kind) else {
                return status(Status::NotFound);
            };
            write_u32(
                &mut c,
                CALL,
                len_ptr,
                u32::try_from(bytes.len()).unwrap_or(u32::MAX),
            )?;
            write_u32(&mut c, CALL, flags_ptr, 0)?;
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_buffer_bytes",
        |mut c: Ctx<'_>, kind: i32, start: i32, size: i32, ptr: i32, len: i32| -> R {
            const CALL: &str = "proxy_set_buffer_bytes";
            guard(&mut c, CALL)?;
            let data = read(&mut c, CALL, ptr, len)?;
            let kind_value = kind;
            let Some(kind) = BufferType::from_abi(u(kind)) else {
                return Err(trap(&mut c, CALL, format!("buffer type {kind_value} does not exist (Envoy: BAD_ARGUMENT)")));
            };
            let (start, size) = (u(start) as usize, u(size) as usize);
            let state = c.data_mut();
            let target = match kind {
                BufferType::HttpRequestBody => state.stream_mut().map(|s| &mut s.request_body),
                BufferType::HttpResponseBody => state.stream_mut().map(|s| &mut s.response_body),
                other => {
                    return Err(trap(
                        &mut c,
                        CALL,
                        format!("{other:?} is read-only (Envoy returns BAD_ARGUMENT, which the SDK turns into a panic)"),
                    ))
                }
            };
            let Some(buffer) = target else {
                return Err(trap(&mut c, CALL, format!("no {kind:?} outside an HTTP stream")));
            };
            // Envoy's Buffer::copyFrom: prepend, replace all, or append; nothing else.
            if start == 0 && size == 0 {
                let mut joined = data;
                joined.extend_from_slice(buffer);
                *buffer = joined;
            } else if start == 0 && size >= buffer.len() {
                *buffer = data;
            } else if start >= buffer.len() {
                buffer.extend_from_slice(&data);
            } else {
                let len = buffer.len();
                return Err(trap(
                    &mut c,
                    CALL,
                    format!(
                        "Envoy only prepends (start 0, size 0), replaces (start 0, size >= length) or appends (start >= length); got start {start}, size {size} on {len} bytes (BAD_ARGUMENT, a panic in the SDK)"
                    ),
                ));
            }
            ok()
        },
    )?;
    Ok(())
}

/// A header map as Envoy exposes it now.
fn map_ref(state: &mut HostState, kind: MapType) -> (Option<&mut Headers>, Access) {
    fn grpc_or_call(state: &mut HostState, kind: MapType) -> Option<&mut Headers> {
        match kind {
            MapType::HttpCallResponseHeaders => {
                state.call_response.as_mut().map(|r| &mut r.headers)
            }
            MapType::HttpCallResponseTrailers => {
                state.call_response.as_mut().map(|r| &mut r.trailers)
            }
            MapType::GrpcReceiveInitialMetadata => state.grpc_initial_metadata.as_mut(),
            MapType::GrpcReceiveTrailingMetadata => state.grpc_trailing_metadata.as_mut(),
            _ => None,
        }
    }
    match kind {
        MapType::HttpCallResponseHeaders
        | MapType::HttpCallResponseTrailers
        | MapType::GrpcReceiveInitialMetadata
        | MapType::GrpcReceiveTrailingMetadata => {
            let map = grpc_or_call(state, kind);
            let access = if map.is_some() {
                Access::Read
            } else {
                Access::None
            };
            (map, access)
        }
        _ => {
            let Some(stream) = state.stream_mut() else {
                return (None, Access::None);
            };
            match kind {
                MapType::HttpRequestHeaders => (
                    Some(&mut stream.request_headers),
                    stream.request_headers_access,
                ),
                MapType::HttpResponseHeaders => (
                    Some(&mut stream.response_headers),
                    stream.response_headers_access,
                ),
                MapType::HttpRequestTrailers => {
                    let access = stream.request_trailers_access;
                    (stream.request_trailers.as_mut(), access)
                }
                _ => {
                    let access = stream.response_trailers_access;
                    (stream.response_trailers.as_mut(), access)
                }
            }
        }
    }
}

/// In the last body callback Envoy lets the filter add trailers.
fn maybe_create_trailers(state: &mut HostState, kind: MapType) {
    if let Some(stream) = state.stream_mut() {
        if kind == MapType::HttpRequestTrailers
            && stream.request_trailers.is_none()
            && stream.request_end_of_stream
        {
            stream.request_trailers = Some(Headers::new());
            stream.request_trailers_access = Access::ReadWrite;
        }
        if kind == MapType::HttpResponseTrailers
            && stream.response_trailers.is_none()
            && stream.response_end_of_stream
        {
            stream.response_trailers = Some(Headers::new());
            stream.response_trailers_access = Access::ReadWrite;
        }
    }
}

fn unavailable(kind: MapType, state: &HostState) -> String {
    format!(
        "{kind:?} is not available in {} (Envoy returns BAD_ARGUMENT, which the SDK turns into a panic: \
         Envoy hands a filter its request/response headers only until it lets them go)",
        state.callback
    )
}

fn mutate_map(c: &mut Ctx<'_>, call: &str, kind: i32, f: impl FnOnce(&mut Headers)) -> R {
    let kind_value = kind;
    let Some(kind) = MapType::from_abi(u(kind)) else {
        return Err(trap(
            c,
            call,
            format!("map type {kind_value} does not exist (Envoy: BAD_ARGUMENT)"),
        ));
    };
    maybe_create_trailers(c.data_mut(), kind);
    let message = unavailable(kind, c.data());
    match map_ref(c.data_mut(), kind) {
        (Some(map), Access::ReadWrite) => {
            f(map);
            ok()
        }
        _ => Err(trap(c, call, message)),
    }
}

fn link_maps(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut c: Ctx<'_>, kind: i32, ret_ptr: i32, ret_size: i32| -> R {
            const CALL: &str = "proxy_get_header_map_pairs";
            guard(&mut c, CALL)?;
            let Some(kind) = MapType::from_abi(u(kind)) else {
                return Err(trap(
                    &mut c,
                    CALL,
                    format!("map type {kind} does not exist (Envoy: BAD_ARGUMENT)"),
                ));
            };
            let encoded = match map_ref(c.data_mut(), kind) {
                (Some(map), Access::Read | Access::ReadWrite) if !map.is_empty() => map.encode(),
                _ => Vec::new(),
            };
            copy_out(&mut c, CALL, &encoded, ret_ptr, ret_size)?;
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        |mut c: Ctx<'_>, kind: i32, ptr: i32, len: i32| -> R {
            const CALL: &str = "proxy_set_header_map_pairs";
            guard(&mut c, CALL)?;
            let bytes = read(&mut c, CALL, ptr, len)?;
            let pairs = match Headers::decode(&bytes) {
                Ok(pairs) => pairs,
                Err(e) => return Err(trap(&mut c, CALL, e)),
            };
            mutate_map(&mut c, CALL, kind, |map| *map = pairs)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut c: Ctx<'_>, kind: i32, key_ptr: i32, key_len: i32, ret_ptr: i32, ret_size: i32| -> R {
            const CALL: &str = "proxy_get_header_map_value";
            guard(&mut c, CALL)?;
            let key = read(&mut c, CALL, key_ptr, key_len)?;
            let key = String::from_utf8_lossy(&key).into_owned();
            let Some(kind) = MapType::from_abi(u(kind)) else {
                return Err(trap(
                    &mut c,
                    CALL,
                    format!("map type {kind} does not exist (Envoy: BAD_ARGUMENT)"),
                ));
            };
            let message = unavailable(kind, c.data());
            let log_phase = c.data_mut().stream_mut().is_some_and(|s| s.log_phase);
            let value = match map_ref(c.data_mut(), kind) {
                (Some(map), Access::Read | Access::ReadWrite) => {
                    map.get_bytes(&key).map(<[u8]>::to_vec)
                }
                // Trailers that do not exist read as an absent value.
                (None, _)
                    if matches!(
                        kind,
                        MapType::HttpRequestTrailers | MapType::HttpResponseTrailers
                    ) =>
                {
                    None
                }
                // In the access-log phase Envoy answers NOT_FOUND for maps it lacks.
                _ if log_phase => None,
                _ => return Err(trap(&mut c, CALL, message)),
            };
            match value {
                Some(value) => {
                    copy_out(&mut c, CALL, &value, ret_ptr, ret_size)?;
                    ok()
                }
                None => status(Status::NotFound),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_size",
        |mut c: Ctx<'_>, kind: i32, ret: i32| -> R {
            const CALL: &str = "proxy_get_header_map_size";
            guard(&mut c, CALL)?;
            let Some(kind) = MapType::from_abi(u(kind)) else {
                return status(Status::BadArgument);
            };
            let size = match map_ref(c.data_mut(), kind) {
                (Some(map), Access::Read | Access::ReadWrite) => map.byte_size(),
                _ => return status(Status::BadArgument),
            };
            write_u32(&mut c, CALL, ret, u32::try_from(size).unwrap_or(u32::MAX))?;
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut c: Ctx<'_>, kind: i32, key_ptr: i32, key_len: i32| -> R {
            const CALL: &str = "proxy_remove_header_map_value";
            guard(&mut c, CALL)?;
            let key = read(&mut c, CALL, key_ptr, key_len)?;
            let key = String::from_utf8_lossy(&key).into_owned();
            mutate_map(&mut c, CALL, kind, |map| map.remove(&key))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        |mut c: Ctx<'_>,
         kind: i32,
         key_ptr: i32,
         key_len: i32,
         value_ptr: i32,
         value_len: i32|
         -> R {
            const CALL: &str = "proxy_replace_header_map_value";
            guard(&mut c, CALL)?;
            let key = read(&mut c, CALL, key_ptr, key_len)?;
            let key = String::from_utf8_lossy(&key).into_owned();
            let value = read(&mut c, CALL, value_ptr, value_len)?;
            mutate_map(&mut c, CALL, kind, |map| map.replace(&key, value))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_add_header_map_value",
        |mut c: Ctx<'_>,
         kind: i32,
         key_ptr: i32,
         key_len: i32,
         value_ptr: i32,
         value_len: i32|
         -> R {
            const CALL: &str = "proxy_add_header_map_value";
            guard(&mut c, CALL)?;
            let key = read(&mut c, CALL, key_ptr, key_len)?;
            let key = String::from_utf8_lossy(&key).into_owned();
            let value = read(&mut c, CALL, value_ptr, value_len)?;
            mutate_map(&mut c, CALL, kind, |map| map.add(&key, value))
        },
    )?;
    Ok(())
}

fn lookup_property(state: &mut HostState, path: &[String]) -> Option<Vec<u8>> {
    let (first, _) = path.split_first()?;
    let config = &state.shared.config;
    let plugin = match first.as_str() {
        "plugin_name" => Some(PropertyValue::String(config.name.clone())),
        "plugin_root_id" => Some(PropertyValue::String(config.root_id.clone())),
        "plugin_vm_id" => Some(PropertyValue::String(config.vm_id.clone())),
        _ => None,
    };
    if path.len() == 1 {
        if let Some(value) = plugin {
            return Some(value.serialize());
        }
    }
    let plugin_properties = state.shared.config.properties.clone();
    if let Some(stream) = state.stream_mut() {
        if let Some(value) = stream.properties.lookup(path) {
            return Some(value.serialize());
        }
        if path.len() == 1 {
            if let Some(value) = stream.filter_state.get(&format!("wasm.{first}")) {
                return Some(value.clone());
            }
        }
    }
    plugin_properties.lookup(path).map(|v| v.serialize())
}

fn link_properties(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_property",
        |mut c: Ctx<'_>, path_ptr: i32, path_len: i32, ret_ptr: i32, ret_size: i32| -> R {
            const CALL: &str = "proxy_get_property";
            guard(&mut c, CALL)?;
            let path = read(&mut c, CALL, path_ptr, path_len)?;
            let segments = split_path(&path);
            match lookup_property(c.data_mut(), &segments) {
                Some(value) => {
                    copy_out(&mut c, CALL, &value, ret_ptr, ret_size)?;
                    ok()
                }
                None => status(Status::NotFound),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_property",
        |mut c: Ctx<'_>, path_ptr: i32, path_len: i32, value_ptr: i32, value_len: i32| -> R {
            const CALL: &str = "proxy_set_property";
            guard(&mut c, CALL)?;
            let path = read(&mut c, CALL, path_ptr, path_len)?;
            let value = read(&mut c, CALL, value_ptr, value_len)?;
            let key = format!("wasm.{}", String::from_utf8_lossy(&path));
            match c.data_mut().stream_mut() {
                Some(stream) => {
                    stream.filter_state.insert(key, value);
                    ok()
                }
                None => Err(trap(
                    &mut c,
                    CALL,
                    "no stream info outside an HTTP stream (Envoy returns NOT_FOUND, a panic in the SDK)",
                )),
            }
        },
    )?;
    Ok(())
}

fn link_shared(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut c: Ctx<'_>,
         key_ptr: i32,
         key_len: i32,
         ret_ptr: i32,
         ret_size: i32,
         cas_ptr: i32|
         -> R {
            const CALL: &str = "proxy_get_shared_data";
            guard(&mut c, CALL)?;
            let key = read(&mut c, CALL, key_ptr, key_len)?;
            let key = String::from_utf8_lossy(&key).into_owned();
            let shared = c.data().shared.clone();
            match shared.shared_data.get(&shared.config.vm_id, &key) {
                Ok((value, cas)) => {
                    copy_out(&mut c, CALL, &value, ret_ptr, ret_size)?;
                    write_u32(&mut c, CALL, cas_ptr, cas)?;
                    ok()
                }
                Err(s) => status(s),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_shared_data",
        |mut c: Ctx<'_>,
         key_ptr: i32,
         key_len: i32,
         value_ptr: i32,
         value_len: i32,
         cas: i32|
         -> R {
            const CALL: &str = "proxy_set_shared_data";
            guard(&mut c, CALL)?;
            let key = read(&mut c, CALL, key_ptr, key_len)?;
            let key = String::from_utf8_lossy(&key).into_owned();
            let value = read(&mut c, CALL, value_ptr, value_len)?;
            let shared = c.data().shared.clone();
            status(
                shared
                    .shared_data
                    .set(&shared.config.vm_id, &key, &value, u(cas)),
            )
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_register_shared_queue",
        |mut c: Ctx<'_>, name_ptr: i32, name_len: i32, ret: i32| -> R {
            const CALL: &str = "proxy_register_shared_queue";
            guard(&mut c, CALL)?;
            let name = read(&mut c, CALL, name_ptr, name_len)?;
            let state = c.data();
            let owner = QueueOwner {
                vm: state.role,
                context_id: state.root_context,
            };
            let shared = state.shared.clone();
            match shared.queues.register(
                &shared.config.vm_id,
                &String::from_utf8_lossy(&name),
                owner,
            ) {
                Ok(token) => {
                    write_u32(&mut c, CALL, ret, token)?;
                    ok()
                }
                Err(s) => Err(trap(&mut c, CALL, format!("{s:?}"))),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_resolve_shared_queue",
        |mut c: Ctx<'_>, vm_ptr: i32, vm_len: i32, name_ptr: i32, name_len: i32, ret: i32| -> R {
            const CALL: &str = "proxy_resolve_shared_queue";
            guard(&mut c, CALL)?;
            let vm_id = read(&mut c, CALL, vm_ptr, vm_len)?;
            let name = read(&mut c, CALL, name_ptr, name_len)?;
            let shared = c.data().shared.clone();
            let vm_id = if vm_id.is_empty() {
                shared.config.vm_id.clone()
            } else {
                String::from_utf8_lossy(&vm_id).into_owned()
            };
            match shared
                .queues
                .resolve(&vm_id, &String::from_utf8_lossy(&name))
            {
                Ok(token) => {
                    write_u32(&mut c, CALL, ret, token)?;
                    ok()
                }
                Err(s) => status(s),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_dequeue_shared_queue",
        |mut c: Ctx<'_>, token: i32, ret_ptr: i32, ret_size: i32| -> R {
            const CALL: &str = "proxy_dequeue_shared_queue";
            guard(&mut c, CALL)?;
            let shared = c.data().shared.clone();
            match shared.queues.dequeue(u(token)) {
                Ok(item) => {
                    copy_out(&mut c, CALL, &item, ret_ptr, ret_size)?;
                    ok()
                }
                Err(s) => status(s),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_enqueue_shared_queue",
        |mut c: Ctx<'_>, token: i32, ptr: i32, len: i32| -> R {
            const CALL: &str = "proxy_enqueue_shared_queue";
            guard(&mut c, CALL)?;
            let item = read(&mut c, CALL, ptr, len)?;
            let shared = c.data().shared.clone();
            match shared.queues.enqueue(u(token), &item) {
                Ok(owner) => {
                    // Told on the owner's thread once it is free (never from here).
                    if let Ok(mailboxes) = shared.mailboxes.lock() {
                        if let Some(mailbox) = mailboxes.get(&owner.vm) {
                            let token = u(token);
                            let _ = mailbox.send(Command::queue_ready(owner.context_id, token));
                        }
                    }
                    ok()
                }
                Err(s) => status(s),
            }
        },
    )?;
    Ok(())
}

fn link_stream_control(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_continue_stream", |mut c: Ctx<'_>, kind: i32| -> R {
        const CALL: &str = "proxy_continue_stream";
        guard(&mut c, CALL)?;
        match StreamType::from_abi(u(kind)) {
            Some(stream @ (StreamType::HttpRequest | StreamType::HttpResponse)) => {
                let state = c.data_mut();
                let context_id = state.context();
                if state.streams.contains_key(&context_id) {
                    state.after_call.push(AfterCall::Continue { context_id, stream });
                }
                ok()
            }
            other => Err(trap(
                &mut c,
                CALL,
                format!("cannot continue {other:?} in an HTTP filter (Envoy: BAD_ARGUMENT, a panic in the SDK)"),
            )),
        }
    })?;
    linker.func_wrap(
        "env",
        "proxy_close_stream",
        |mut c: Ctx<'_>, kind: i32| -> R {
            const CALL: &str = "proxy_close_stream";
            guard(&mut c, CALL)?;
            match StreamType::from_abi(u(kind)) {
                Some(stream @ (StreamType::HttpRequest | StreamType::HttpResponse)) => {
                    let state = c.data_mut();
                    let context_id = state.context();
                    if state.streams.contains_key(&context_id) {
                        state
                            .after_call
                            .push(AfterCall::Close { context_id, stream });
                    }
                    ok()
                }
                Some(_) => ok(),
                None => Err(trap(
                    &mut c,
                    CALL,
                    format!("stream type {kind} does not exist (Envoy: BAD_ARGUMENT)"),
                )),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut c: Ctx<'_>,
         code: i32,
         details_ptr: i32,
         details_len: i32,
         body_ptr: i32,
         body_len: i32,
         headers_ptr: i32,
         headers_len: i32,
         grpc_status: i32|
         -> R {
            const CALL: &str = "proxy_send_local_response";
            guard(&mut c, CALL)?;
            let details = read(&mut c, CALL, details_ptr, details_len)?;
            let body = read(&mut c, CALL, body_ptr, body_len)?;
            let headers = read(&mut c, CALL, headers_ptr, headers_len)?;
            let headers = match decode_pairs(&headers) {
                Ok(pairs) => Headers::from_pairs(
                    pairs
                        .iter()
                        .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), v.clone())),
                ),
                Err(e) => return Err(trap(&mut c, CALL, e)),
            };
            let state = c.data_mut();
            let context_id = state.context();
            if state.streams.contains_key(&context_id) {
                let reply = LocalReply {
                    status: u16::try_from(u(code)).unwrap_or(u16::MAX),
                    headers,
                    body,
                    details: String::from_utf8_lossy(&details).replace(char::is_whitespace, "_"),
                    grpc_status: (0..=16).contains(&grpc_status).then_some(u(grpc_status)),
                };
                state
                    .after_call
                    .push(AfterCall::LocalReply { context_id, reply });
            }
            ok()
        },
    )?;
    Ok(())
}

fn decode_map(c: &mut Ctx<'_>, call: &str, ptr: i32, len: i32) -> wasmtime::Result<Headers> {
    let bytes = read(c, call, ptr, len)?;
    match decode_pairs(&bytes) {
        Ok(pairs) => {
            Ok(Headers::from_pairs(pairs.into_iter().map(|(k, v)| {
                (String::from_utf8_lossy(&k).into_owned(), v)
            })))
        }
        Err(e) => Err(trap(c, call, e)),
    }
}

fn timeout(ms: i32) -> Option<Duration> {
    (u(ms) != 0).then(|| Duration::from_millis(u64::from(u(ms))))
}

fn link_callouts(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_http_call",
        |mut c: Ctx<'_>,
         up_ptr: i32,
         up_len: i32,
         h_ptr: i32,
         h_len: i32,
         b_ptr: i32,
         b_len: i32,
         t_ptr: i32,
         t_len: i32,
         timeout_ms: i32,
         ret: i32|
         -> R {
            const CALL: &str = "proxy_http_call";
            guard(&mut c, CALL)?;
            let cluster =
                String::from_utf8_lossy(&read(&mut c, CALL, up_ptr, up_len)?).into_owned();
            let headers = decode_map(&mut c, CALL, h_ptr, h_len)?;
            let body = read(&mut c, CALL, b_ptr, b_len)?;
            let trailers = decode_map(&mut c, CALL, t_ptr, t_len)?;
            let shared = c.data().shared.clone();
            if !shared.config.clusters.contains(&cluster) {
                return status(Status::BadArgument);
            }
            if !(headers.contains(":path")
                && headers.contains(":method")
                && headers.contains(":authority"))
            {
                return status(Status::BadArgument);
            }
            let state = c.data_mut();
            let token = state.token();
            let call = HttpCall {
                token,
                vm: state.role,
                context_id: state.context(),
                cluster,
                headers,
                body,
                trailers,
                timeout: timeout(timeout_ms),
            };
            state.http_calls.insert(token, call.clone());
            match shared.http_responder.as_ref().and_then(|r| r(&call)) {
                Some(reply) => state.ready.push_back(Ready::Http { token, reply }),
                None => {
                    state.pending_http.insert(token, call);
                }
            }
            write_u32(&mut c, CALL, ret, token)?;
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_call",
        |mut c: Ctx<'_>,
         up_ptr: i32,
         up_len: i32,
         s_ptr: i32,
         s_len: i32,
         m_ptr: i32,
         m_len: i32,
         md_ptr: i32,
         md_len: i32,
         msg_ptr: i32,
         msg_len: i32,
         timeout_ms: i32,
         ret: i32|
         -> R {
            const CALL: &str = "proxy_grpc_call";
            guard(&mut c, CALL)?;
            let call = grpc_call(
                &mut c,
                CALL,
                [up_ptr, up_len, s_ptr, s_len, m_ptr, m_len, md_ptr, md_len],
            )?;
            let Some(mut call) = call else {
                return status(Status::ParseFailure);
            };
            call.messages = vec![read(&mut c, CALL, msg_ptr, msg_len)?];
            call.timeout = timeout(timeout_ms);
            let shared = c.data().shared.clone();
            let token = call.token;
            let state = c.data_mut();
            state.grpc_calls.insert(token, call.clone());
            if let Some(events) = shared.grpc_responder.as_ref().and_then(|r| r(&call)) {
                for event in events {
                    state.ready.push_back(Ready::Grpc { token, event });
                }
            }
            write_u32(&mut c, CALL, ret, token)?;
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_stream",
        |mut c: Ctx<'_>,
         up_ptr: i32,
         up_len: i32,
         s_ptr: i32,
         s_len: i32,
         m_ptr: i32,
         m_len: i32,
         md_ptr: i32,
         md_len: i32,
         ret: i32|
         -> R {
            const CALL: &str = "proxy_grpc_stream";
            guard(&mut c, CALL)?;
            let call = grpc_call(
                &mut c,
                CALL,
                [up_ptr, up_len, s_ptr, s_len, m_ptr, m_len, md_ptr, md_len],
            )?;
            let Some(mut call) = call else {
                return status(Status::ParseFailure);
            };
            call.streaming = true;
            let token = call.token;
            c.data_mut().grpc_calls.insert(token, call);
            write_u32(&mut c, CALL, ret, token)?;
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_send",
        |mut c: Ctx<'_>, token: i32, ptr: i32, len: i32, end: i32| -> R {
            const CALL: &str = "proxy_grpc_send";
            guard(&mut c, CALL)?;
            let message = read(&mut c, CALL, ptr, len)?;
            match c.data_mut().grpc_calls.get_mut(&u(token)) {
                None => status(Status::NotFound),
                Some(call) if !call.streaming => status(Status::BadArgument),
                Some(call) => {
                    call.messages.push(message);
                    if end != 0 {
                        call.locally_closed = true;
                    }
                    ok()
                }
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_cancel",
        |mut c: Ctx<'_>, token: i32| -> R {
            guard(&mut c, "proxy_grpc_cancel")?;
            let state = c.data_mut();
            match state.grpc_calls.get_mut(&u(token)) {
                Some(call) if !call.cancelled => {
                    call.cancelled = true;
                    state
                        .ready
                        .retain(|r| !matches!(r, Ready::Grpc { token: t, .. } if *t == u(token)));
                    ok()
                }
                _ => status(Status::NotFound),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_close",
        |mut c: Ctx<'_>, token: i32| -> R {
            guard(&mut c, "proxy_grpc_close")?;
            match c.data_mut().grpc_calls.get_mut(&u(token)) {
                Some(call) if !call.cancelled => {
                    call.locally_closed = true;
                    if !call.streaming {
                        call.cancelled = true;
                    }
                    ok()
                }
                _ => status(Status::NotFound),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_status",
        |mut c: Ctx<'_>, code_ptr: i32, ret_ptr: i32, ret_size: i32| -> R {
            const CALL: &str = "proxy_get_status";
            guard(&mut c, CALL)?;
            let (code, message) = c.data().status.clone();
            write_u32(&mut c, CALL, code_ptr, code)?;
            copy_out(&mut c, CALL, &message, ret_ptr, ret_size)?;
            ok()
        },
    )?;
    Ok(())
}

/// The cluster a gRPC call's `upstream` names. Envoy (`Context::grpcCall`) first reads it
/// as a serialized `envoy.config.core.v3.GrpcService` and takes `envoy_grpc.cluster_name`
/// (field 1, field 1); bytes that are not one are a bare cluster name.
fn grpc_cluster(upstream: &[u8]) -> String {
    /// The length-delimited field 1 of a message, if the whole message parses.
    fn field_one(mut b: &[u8]) -> Option<&[u8]> {
        fn varint(b: &mut &[u8]) -> Option<u64> {
            let mut v = 0u64;
            for shift in (0..64).step_by(7) {
                let (&byte, rest) = b.split_first()?;
                *b = rest;
                v |= u64::from(byte & 0x7f) << shift;
                if byte < 0x80 {
                    return Some(v);
                }
            }
            None
        }
        let mut found = None;
        while !b.is_empty() {
            let key = varint(&mut b)?;
            match key & 7 {
                0 => {
                    varint(&mut b)?;
                }
                2 => {
                    let len = usize::try_from(varint(&mut b)?).ok()?;
                    let (value, rest) = b.split_at_checked(len)?;
                    b = rest;
                    if key >> 3 == 1 {
                        found = Some(value);
                    }
                }
                _ => return None,
            }
        }
        found
    }
    field_one(upstream)
        .and_then(field_one)
        .filter(|name| !name.is_empty())
        .and_then(|name| std::str::from_utf8(name).ok())
        .map_or_else(
            || String::from_utf8_lossy(upstream).into_owned(),
            str::to_string,
        )
}

/// Reads a gRPC call's common arguments; `None` when the cluster does not exist.
fn grpc_call(c: &mut Ctx<'_>, call: &str, args: [i32; 8]) -> wasmtime::Result<Option<GrpcCall>> {
    let [up_ptr, up_len, s_ptr, s_len, m_ptr, m_len, md_ptr, md_len] = args;
    let cluster = grpc_cluster(&read(c, call, up_ptr, up_len)?);
    let service = String::from_utf8_lossy(&read(c, call, s_ptr, s_len)?).into_owned();
    let method = String::from_utf8_lossy(&read(c, call, m_ptr, m_len)?).into_owned();
    let initial_metadata = decode_map(c, call, md_ptr, md_len)?;
    if !c.data().shared.config.clusters.contains(&cluster) {
        return Ok(None);
    }
    let state = c.data_mut();
    Ok(Some(GrpcCall {
        token: state.token(),
        vm: state.role,
        context_id: state.context(),
        cluster,
        service,
        method,
        initial_metadata,
        messages: Vec::new(),
        timeout: None,
        streaming: false,
        cancelled: false,
        locally_closed: false,
    }))
}

fn link_metrics(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_define_metric", |mut c: Ctx<'_>, kind: i32, name_ptr: i32, name_len: i32, ret: i32| -> R {
        const CALL: &str = "proxy_define_metric";
        guard(&mut c, CALL)?;
        let name = String::from_utf8_lossy(&read(&mut c, CALL, name_ptr, name_len)?).into_owned();
        let Some(kind) = MetricType::from_abi(u(kind)) else {
            return Err(trap(&mut c, CALL, format!("metric type {kind} does not exist (Envoy: BAD_ARGUMENT, a panic in the SDK)")));
        };
        if c.data().shared.metrics.define(kind, &name).is_none() {
            return Err(trap(&mut c, CALL, format!("metric {name:?} already exists with another type")));
        }
        let state = c.data_mut();
        state.next_metric_seq += 1;
        let id = (state.next_metric_seq << 2) | kind.abi();
        state.metric_ids.insert(id, name);
        write_u32(&mut c, CALL, ret, id)?;
        ok()
    })?;
    linker.func_wrap(
        "env",
        "proxy_get_metric",
        |mut c: Ctx<'_>, id: i32, ret: i32| -> R {
            const CALL: &str = "proxy_get_metric";
            guard(&mut c, CALL)?;
            let Some(name) = c.data().metric_ids.get(&u(id)).cloned() else {
                return status(Status::NotFound);
            };
            let value = match c.data().shared.metrics.get(&name) {
                Some(MetricValue::Counter(v) | MetricValue::Gauge(v)) => v,
                Some(MetricValue::Histogram(_)) => return status(Status::BadArgument),
                None => return status(Status::NotFound),
            };
            write_u64(&mut c, CALL, ret, value)?;
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_record_metric",
        |mut c: Ctx<'_>, id: i32, value: i64| -> R {
            guard(&mut c, "proxy_record_metric")?;
            let Some(name) = c.data().metric_ids.get(&u(id)).cloned() else {
                return status(Status::NotFound);
            };
            let value = value as u64;
            c.data().shared.metrics.update(&name, |m| match m {
                MetricValue::Counter(v) => *v = v.saturating_add(value),
                MetricValue::Gauge(v) => *v = value,
                MetricValue::Histogram(values) => values.push(value),
            });
            ok()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_increment_metric",
        |mut c: Ctx<'_>, id: i32, offset: i64| -> R {
            guard(&mut c, "proxy_increment_metric")?;
            let Some(name) = c.data().metric_ids.get(&u(id)).cloned() else {
                return status(Status::NotFound);
            };
            let mut result = Status::Ok;
            c.data().shared.metrics.update(&name, |m| match m {
                MetricValue::Counter(v) if offset > 0 => *v = v.saturating_add(offset as u64),
                MetricValue::Gauge(v) if offset >= 0 => *v = v.saturating_add(offset as u64),
                MetricValue::Gauge(v) => *v = v.saturating_sub(offset.unsigned_abs()),
                MetricValue::Counter(_) | MetricValue::Histogram(_) => result = Status::BadArgument,
            });
            status(result)
        },
    )?;
    Ok(())
}

fn link_misc(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_set_effective_context",
        |mut c: Ctx<'_>, id: i32| -> R {
            guard(&mut c, "proxy_set_effective_context")?;
            let state = c.data_mut();
            if state.has_context(u(id)) {
                state.effective_context = u(id);
                ok()
            } else {
                status(Status::BadArgument)
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_call_foreign_function",
        |mut c: Ctx<'_>,
         name_ptr: i32,
         name_len: i32,
         args_ptr: i32,
         args_len: i32,
         ret_ptr: i32,
         ret_size: i32|
         -> R {
            const CALL: &str = "proxy_call_foreign_function";
            guard(&mut c, CALL)?;
            let name =
                String::from_utf8_lossy(&read(&mut c, CALL, name_ptr, name_len)?).into_owned();
            let args = read(&mut c, CALL, args_ptr, args_len)?;
            let Some(function) = c.data().shared.foreign_functions.get(&name).cloned() else {
                return status(Status::NotFound);
            };
            match function(&args) {
                Ok(result) => {
                    copy_out(&mut c, CALL, &result, ret_ptr, ret_size)?;
                    ok()
                }
                Err(s) => status(s),
            }
        },
    )?;
    linker.func_wrap("env", "proxy_done", |mut c: Ctx<'_>| -> R {
        const CALL: &str = "proxy_done";
        guard(&mut c, CALL)?;
        let state = c.data_mut();
        if state.root_pending_done {
            state.root_done_called = true;
            ok()
        } else {
            Err(trap(
                &mut c,
                CALL,
                "the root context is not shutting down (Envoy returns NOT_FOUND, a panic in the SDK)",
            ))
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::grpc_cluster;

    #[test]
    fn grpc_upstream_is_a_grpc_service_or_a_bare_cluster_name() {
        // GrpcService { envoy_grpc { cluster_name: "ratelimit" } }, as Toolgate sends it.
        assert_eq!(grpc_cluster(b"\x0a\x0b\x0a\x09ratelimit"), "ratelimit");
        // With a timeout (field 3) beside it.
        assert_eq!(grpc_cluster(b"\x0a\x04\x0a\x02rl\x1a\x02\x08\x01"), "rl");
        assert_eq!(grpc_cluster(b"ratelimit"), "ratelimit");
        assert_eq!(grpc_cluster(b"outbound|8081||rls"), "outbound|8081||rls");
    }
}
