//! The host calls the filter makes, declared here with raw `u32` statuses and mapped to
//! typed errors in one place. (The SDK's own wrappers panic on a status they do not expect,
//! and its `Status` enum cannot hold every value a host may return.)

use std::ptr::null_mut;

/// A host call failed. The filter fails closed on every one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostError {
    /// The host does not have what was asked for (NOT_FOUND).
    NotFound,
    /// The host refused the arguments (BAD_ARGUMENT).
    BadArgument,
    /// A compare-and-swap lost a race (CAS_MISMATCH).
    CasMismatch,
    /// Any other status, kept for the log.
    Status(u32),
}

impl HostError {
    /// A short name for logs.
    pub fn describe(self) -> String {
        match self {
            HostError::NotFound => "not found".into(),
            HostError::BadArgument => "bad argument".into(),
            HostError::CasMismatch => "CAS mismatch".into(),
            HostError::Status(s) => format!("host status {s}"),
        }
    }
}

/// The single place host statuses become results.
fn check(status: u32) -> Result<(), HostError> {
    match status {
        0 => Ok(()),
        1 => Err(HostError::NotFound),
        2 => Err(HostError::BadArgument),
        8 => Err(HostError::CasMismatch),
        s => Err(HostError::Status(s)),
    }
}

/// Buffer types of `proxy_get_buffer_bytes`.
#[derive(Clone, Copy)]
#[repr(u32)]
pub enum Buffer {
    /// The request body.
    RequestBody = 0,
    /// The response body.
    ResponseBody = 1,
    /// The message of a gRPC call's response.
    GrpcReceive = 5,
    /// The plugin configuration.
    PluginConfiguration = 7,
}

/// Header maps.
#[derive(Clone, Copy)]
#[repr(u32)]
pub enum Map {
    /// Request headers.
    RequestHeaders = 0,
    /// Request trailers.
    RequestTrailers = 1,
    /// Response headers.
    ResponseHeaders = 2,
}

/// Log levels.
#[derive(Clone, Copy)]
#[repr(u32)]
pub enum Level {
    /// Info.
    Info = 2,
    /// Warn.
    Warn = 3,
    /// Error.
    Error = 4,
}

#[allow(clashing_extern_declarations)]
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, data: *const u8, size: usize) -> u32;
    fn proxy_get_current_time_nanoseconds(out: *mut u64) -> u32;
    fn proxy_get_buffer_bytes(
        kind: u32,
        start: usize,
        max: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(kind: u32, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_get_header_map_value(
        kind: u32,
        kd: *const u8,
        ks: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_add_header_map_value(
        kind: u32,
        kd: *const u8,
        ks: usize,
        vd: *const u8,
        vs: usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        kind: u32,
        kd: *const u8,
        ks: usize,
        vd: *const u8,
        vs: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(kind: u32, kd: *const u8, ks: usize) -> u32;
    fn proxy_set_buffer_bytes(
        kind: u32,
        start: usize,
        size: usize,
        data: *const u8,
        data_size: usize,
    ) -> u32;
    fn proxy_get_property(
        path: *const u8,
        path_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_set_property(
        path: *const u8,
        path_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_get_shared_data(
        key: *const u8,
        key_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
        cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_send_local_response(
        status: u32,
        details: *const u8,
        details_size: usize,
        body: *const u8,
        body_size: usize,
        headers: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_continue_stream(kind: u32) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_grpc_call(
        upstream: *const u8,
        upstream_size: usize,
        service: *const u8,
        service_size: usize,
        method: *const u8,
        method_size: usize,
        metadata: *const u8,
        metadata_size: usize,
        message: *const u8,
        message_size: usize,
        timeout_ms: u32,
        token: *mut u32,
    ) -> u32;
    fn proxy_define_metric(kind: u32, name: *const u8, name_size: usize, id: *mut u32) -> u32;
    fn proxy_increment_metric(id: u32, offset: i64) -> u32;
}

/// Takes ownership of memory the host allocated through `proxy_on_memory_allocate` (the
/// SDK's allocator hands out boxed slices, so capacity equals length).
fn take(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() || size == 0 {
        return Vec::new();
    }
    // SAFETY: the host wrote `size` bytes into a buffer of exactly `size` bytes that it
    // obtained from our allocator, and handed ownership to us.
    unsafe { Vec::from_raw_parts(data, size, size) }
}

/// Writes a log line.
pub fn log(level: Level, message: &str) {
    // SAFETY: pointer and length describe a live string.
    let _ = unsafe { proxy_log(level as u32, message.as_ptr(), message.len()) };
}

/// Logs `parts` one after the other as one message (without the format machinery).
pub fn log_parts(level: Level, parts: &[&str]) {
    log(level, &parts.concat());
}

/// The host's wall clock, Unix nanoseconds.
pub fn now_nanos() -> Result<u64, HostError> {
    let mut t = 0u64;
    // SAFETY: `t` outlives the call.
    check(unsafe { proxy_get_current_time_nanoseconds(&mut t) })?;
    Ok(t)
}

/// Up to `max` bytes of a buffer from `start`.
pub fn buffer(kind: Buffer, start: usize, max: usize) -> Result<Vec<u8>, HostError> {
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: out-pointers are valid for the call.
    check(unsafe { proxy_get_buffer_bytes(kind as u32, start, max, &mut data, &mut size) })?;
    Ok(take(data, size))
}

/// A header map in its wire encoding.
pub fn header_pairs(kind: Map) -> Result<Vec<u8>, HostError> {
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: out-pointers are valid for the call.
    check(unsafe { proxy_get_header_map_pairs(kind as u32, &mut data, &mut size) })?;
    Ok(take(data, size))
}

/// The value of one header (`None` when absent).
pub fn header_value(kind: Map, name: &str) -> Result<Option<Vec<u8>>, HostError> {
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: the name is a live string; out-pointers are valid for the call.
    let status = unsafe {
        proxy_get_header_map_value(kind as u32, name.as_ptr(), name.len(), &mut data, &mut size)
    };
    match check(status) {
        Ok(()) => Ok(Some(take(data, size))),
        Err(HostError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Adds a header value.
pub fn add_header(kind: Map, name: &str, value: &str) -> Result<(), HostError> {
    // SAFETY: pointers and lengths describe live strings.
    check(unsafe {
        proxy_add_header_map_value(
            kind as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

/// Sets a header, replacing every value it had.
pub fn replace_header(kind: Map, name: &str, value: &str) -> Result<(), HostError> {
    // SAFETY: pointers and lengths describe live strings.
    check(unsafe {
        proxy_replace_header_map_value(
            kind as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

/// Removes a header.
pub fn remove_header(kind: Map, name: &str) -> Result<(), HostError> {
    // SAFETY: pointer and length describe a live string.
    check(unsafe { proxy_remove_header_map_value(kind as u32, name.as_ptr(), name.len()) })
}

/// Replaces `size` bytes of a buffer from `start` with `data`.
pub fn set_buffer(kind: Buffer, start: usize, size: usize, data: &[u8]) -> Result<(), HostError> {
    // SAFETY: the data buffer is valid for the call.
    check(unsafe { proxy_set_buffer_bytes(kind as u32, start, size, data.as_ptr(), data.len()) })
}

fn join_path(path: &[&str]) -> Vec<u8> {
    let mut p = Vec::new();
    for (i, seg) in path.iter().enumerate() {
        if i > 0 {
            p.push(0);
        }
        p.extend_from_slice(seg.as_bytes());
    }
    p
}

/// An Envoy attribute; `Ok(None)` when absent.
pub fn property(path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
    let p = join_path(path);
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: the path buffer and out-pointers are valid for the call.
    match check(unsafe { proxy_get_property(p.as_ptr(), p.len(), &mut data, &mut size) }) {
        Ok(()) => Ok(Some(take(data, size))),
        Err(HostError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Sets an attribute (Envoy keeps it as filter state `wasm.<path>`).
pub fn set_property(path: &[&str], value: &[u8]) -> Result<(), HostError> {
    let p = join_path(path);
    // SAFETY: buffers are valid for the call.
    check(unsafe { proxy_set_property(p.as_ptr(), p.len(), value.as_ptr(), value.len()) })
}

/// A shared-data value and its CAS token; `Ok(None)` when absent.
pub fn shared_get(key: &str) -> Result<Option<(Vec<u8>, u32)>, HostError> {
    let (mut data, mut size, mut cas) = (null_mut(), 0usize, 0u32);
    // SAFETY: the key and out-pointers are valid for the call.
    match check(unsafe {
        proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas)
    }) {
        Ok(()) => Ok(Some((take(data, size), cas))),
        Err(HostError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes shared data if `cas` matches (0: unconditionally).
pub fn shared_set(key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
    // SAFETY: buffers are valid for the call.
    check(unsafe {
        proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
    })
}

/// Encodes headers in the proxy-wasm map format.
pub fn encode_pairs(pairs: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

/// Answers the stream locally (takes effect when the current callback returns).
pub fn send_local_response(
    status: u16,
    details: &str,
    body: &[u8],
    headers: &[(String, String)],
) -> Result<(), HostError> {
    let h = encode_pairs(headers);
    // SAFETY: buffers are valid for the call.
    check(unsafe {
        proxy_send_local_response(
            u32::from(status),
            details.as_ptr(),
            details.len(),
            body.as_ptr(),
            body.len(),
            h.as_ptr(),
            h.len(),
            -1,
        )
    })
}

/// Lets a paused request go on upstream.
pub fn continue_request() -> Result<(), HostError> {
    // SAFETY: a plain value.
    check(unsafe { proxy_continue_stream(0) })
}

/// Makes the next host calls act on context `id` (a stream, in a callback the host made on
/// behalf of another context).
pub fn set_effective_context(id: u32) -> Result<(), HostError> {
    // SAFETY: a plain value.
    check(unsafe { proxy_set_effective_context(id) })
}

/// Starts a unary gRPC call without metadata; the token names its answer.
pub fn grpc_call(
    upstream: &str,
    service: &str,
    method: &str,
    message: &[u8],
    timeout: std::time::Duration,
) -> Result<u32, HostError> {
    let metadata = encode_pairs(&[]);
    let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    let mut token = 0u32;
    // SAFETY: buffers and the out-pointer are valid for the call.
    check(unsafe {
        proxy_grpc_call(
            upstream.as_ptr(),
            upstream.len(),
            service.as_ptr(),
            service.len(),
            method.as_ptr(),
            method.len(),
            metadata.as_ptr(),
            metadata.len(),
            message.as_ptr(),
            message.len(),
            timeout_ms,
            &mut token,
        )
    })?;
    Ok(token)
}

/// Defines a counter metric.
pub fn define_counter(name: &str) -> Result<u32, HostError> {
    let mut id = 0u32;
    // SAFETY: the name and out-pointer are valid for the call.
    check(unsafe { proxy_define_metric(0, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// Adds to a counter.
pub fn increment(id: u32, by: i64) -> Result<(), HostError> {
    // SAFETY: plain values.
    check(unsafe { proxy_increment_metric(id, by) })
}
