//! The functions the host calls (the proxy-wasm ABI 0.2.1 exports), routed to the plugin's
//! root contexts and request streams.
//!
//! This replaces an SDK dispatcher: its trait objects link every host-call wrapper of the
//! SDK (each with a panic path) and look contexts up through SipHash maps on every
//! callback. Here contexts live in vectors sorted by the host's ids, a
//! callback holds its own reference to its context and no borrow of the maps (so a host that
//! calls back into the module, or deletes the context, from inside a host call finds the
//! maps free and the running context busy), and an id the host never created fails closed
//! instead of aborting the VM.

use crate::abi;
use crate::{Root, Stream};
use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::rc::Rc;

/// What a stream callback tells the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Action {
    /// Go on with the stream.
    Continue = 0,
    /// Hold the stream (headers: stop iteration; body: buffer).
    Pause = 1,
}

/// Values by host-assigned id (context ids, call tokens), sorted by id: the host hands ids
/// out in increasing order, so an insert lands at the end and a lookup is a binary search,
/// with no hasher nor hash table linked into the module.
struct ById<V>(Vec<(u32, V)>);

impl<V> Default for ById<V> {
    fn default() -> Self {
        ById(Vec::new())
    }
}

impl<V> ById<V> {
    fn at(&self, id: u32) -> Result<usize, usize> {
        self.0.binary_search_by_key(&id, |(k, _)| *k)
    }

    fn get(&self, id: &u32) -> Option<&V> {
        let i = self.at(*id).ok()?;
        self.0.get(i).map(|(_, v)| v)
    }

    fn insert(&mut self, id: u32, value: V) {
        match self.at(id) {
            Ok(i) => {
                if let Some(e) = self.0.get_mut(i) {
                    e.1 = value;
                }
            }
            Err(i) => self.0.insert(i, (id, value)),
        }
    }

    fn remove(&mut self, id: &u32) -> Option<V> {
        let i = self.at(*id).ok()?;
        Some(self.0.remove(i).1)
    }

    fn retain(&mut self, mut keep: impl FnMut(&u32, &mut V) -> bool) {
        self.0.retain_mut(|(k, v)| keep(k, v));
    }
}

/// Every context of this VM.
#[derive(Default)]
struct Contexts {
    /// One per plugin sharing the VM.
    roots: ById<Rc<RefCell<Root>>>,
    /// Live request streams.
    streams: ById<Rc<RefCell<Stream>>>,
    /// gRPC calls in flight: token to the stream that made it.
    calls: ById<u32>,
}

thread_local! {
    static CONTEXTS: RefCell<Contexts> = RefCell::new(Contexts::default());
}

/// Runs `f` on the context `id` of the map `which` picks, holding its own reference so no
/// borrow of the maps is held meanwhile (the host may call back into the module, or delete
/// the context, from inside a host call). `None` when the context is unknown (or already
/// running: the host re-entered the module).
fn with_context<T, R>(
    id: u32,
    which: fn(&Contexts) -> &ById<Rc<RefCell<T>>>,
    f: impl FnOnce(&mut T) -> R,
) -> Option<R> {
    let context = CONTEXTS.with(|c| {
        c.try_borrow()
            .ok()
            .and_then(|c| which(&c).get(&id).cloned())
    })?;
    let mut context = context.try_borrow_mut().ok()?;
    Some(f(&mut context))
}

/// Runs `f` on stream `id` (see [`with_context`]).
fn with_stream<R>(id: u32, f: impl FnOnce(&mut Stream) -> R) -> Option<R> {
    with_context(id, |c| &c.streams, f)
}

/// Runs `f` on root context `id` (see [`with_context`]).
fn with_root<R>(id: u32, f: impl FnOnce(&mut Root) -> R) -> Option<R> {
    with_context(id, |c| &c.roots, f)
}

/// A request callback for a stream the module does not know: refuse it.
fn unknown_request_stream() -> u32 {
    Stream::orphan(0).unavailable() as u32
}

/// Remembers which stream made gRPC call `token`.
pub fn register_call(token: u32, stream: u32) {
    CONTEXTS.with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            c.calls.insert(token, stream);
        }
    });
}

fn take_call(token: u32) -> Option<u32> {
    CONTEXTS.with(|c| {
        c.try_borrow_mut()
            .ok()
            .and_then(|mut c| c.calls.remove(&token))
    })
}

#[cfg(target_os = "wasi")]
extern "C" {
    fn __wasm_call_ctors();
}

/// The reactor's start: runs static constructors (the WASI libc's).
#[no_mangle]
pub extern "C" fn _initialize() {
    #[cfg(target_os = "wasi")]
    // SAFETY: called once by the host before anything else, as the reactor ABI requires.
    unsafe {
        __wasm_call_ctors();
    }
}

/// Marks the ABI version this module speaks.
#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// Memory the host fills and hands to the module (host-call results): a boxed slice, so
/// [`abi`] can take it back as a `Vec` whose capacity is its length.
#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let slice: Box<[MaybeUninit<u8>]> = Box::new_uninit_slice(size);
    Box::into_raw(slice).cast::<u8>()
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(id: u32, root_id: u32) {
    if root_id == 0 {
        CONTEXTS.with(|c| {
            if let Ok(mut c) = c.try_borrow_mut() {
                c.roots.insert(id, Rc::default());
            }
        });
        return;
    }
    // A stream of a root that never loaded (or is unknown) has no engine and refuses.
    let stream =
        with_root(root_id, |root| root.create_stream(id)).unwrap_or_else(|| Stream::orphan(id));
    CONTEXTS.with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            c.streams.insert(id, Rc::new(RefCell::new(stream)));
        }
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_vm_start(_id: u32, _size: usize) -> bool {
    true
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(id: u32, _size: usize) -> bool {
    with_root(id, Root::on_configure).unwrap_or(false)
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(id: u32, _count: usize, end_of_stream: bool) -> u32 {
    with_stream(id, |s| s.on_request_headers(end_of_stream) as u32)
        .unwrap_or_else(unknown_request_stream)
}

#[no_mangle]
pub extern "C" fn proxy_on_request_body(id: u32, size: usize, end_of_stream: bool) -> u32 {
    with_stream(id, |s| s.on_request_body(size, end_of_stream) as u32)
        .unwrap_or_else(unknown_request_stream)
}

#[no_mangle]
pub extern "C" fn proxy_on_request_trailers(id: u32, count: usize) -> u32 {
    with_stream(id, |s| s.on_request_trailers(count) as u32).unwrap_or_else(unknown_request_stream)
}

#[no_mangle]
pub extern "C" fn proxy_on_response_headers(id: u32, _count: usize, _end: bool) -> u32 {
    with_stream(id, |s| s.on_response_headers() as u32).unwrap_or(Action::Continue as u32)
}

#[no_mangle]
pub extern "C" fn proxy_on_response_body(id: u32, size: usize, end_of_stream: bool) -> u32 {
    with_stream(id, |s| s.on_response_body(size, end_of_stream) as u32)
        .unwrap_or(Action::Continue as u32)
}

#[no_mangle]
pub extern "C" fn proxy_on_response_trailers(id: u32, _count: usize) -> u32 {
    with_stream(id, |s| s.on_response_trailers() as u32).unwrap_or(Action::Continue as u32)
}

/// A gRPC call's response arrived.
#[no_mangle]
pub extern "C" fn proxy_on_grpc_receive(_id: u32, token: u32, size: usize) {
    grpc_answer(token, 0, size);
}

/// A gRPC call ended without a response (status non-zero) or after it.
#[no_mangle]
pub extern "C" fn proxy_on_grpc_close(_id: u32, token: u32, status: u32) {
    grpc_answer(token, status, 0);
}

fn grpc_answer(token: u32, status: u32, size: usize) {
    let Some(stream) = take_call(token) else {
        return;
    };
    // Host calls made while handling the answer (resuming the request, answering it)
    // must act on the stream, not on the root the host called.
    if abi::set_effective_context(stream).is_err() {
        return;
    }
    with_stream(stream, |s| s.on_grpc_response(token, status, size));
}

// No `proxy_on_log` and no `proxy_on_done`: Toolgate has nothing to do in either, and the
// host skips a callback the module does not export (a missing `proxy_on_done` reads as
// done). Each export Envoy calls costs a crossing into V8 on every request: about 1,500
// instructions each (bench/instructions.py).

#[no_mangle]
pub extern "C" fn proxy_on_delete(id: u32) {
    CONTEXTS.with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            if c.streams.remove(&id).is_none() {
                c.roots.remove(&id);
            }
            c.calls.retain(|_, stream| *stream != id);
        }
    });
}
