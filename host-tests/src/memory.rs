//! Reading and writing guest memory from a hostcall, and handing data to the guest the
//! way cpp-host's `copyToPointerSize` does: allocate with the module's
//! `proxy_on_memory_allocate` (or `malloc`), copy, then store pointer and size. Empty data
//! is returned as a null pointer and size 0 (the SDK reads that as `None`).
//!
//! Any out-of-bounds access traps with a message naming the hostcall: the SDK has no
//! status for it (cpp-host's `INVALID_MEMORY_ACCESS` would make it panic anyway).

use wasmtime::{Caller, Extern, Memory, TypedFunc};

use crate::state::HostState;

/// A trap raised by the host, with a message naming the hostcall.
pub(crate) fn trap(
    caller: &mut Caller<'_, HostState>,
    call: &str,
    why: impl std::fmt::Display,
) -> wasmtime::Error {
    let message = format!("{call}: {why}");
    caller.data_mut().host_trap = Some(message.clone());
    wasmtime::Error::msg(message)
}

/// The exports a module's allocator may have, in the order cpp-host tries them.
pub(crate) const ALLOCATOR_EXPORTS: [&str; 2] = ["proxy_on_memory_allocate", "malloc"];

fn memory(caller: &mut Caller<'_, HostState>, call: &str) -> wasmtime::Result<Memory> {
    if let Some(memory) = caller.data().memory {
        return Ok(memory);
    }
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Ok(memory),
        _ => Err(trap(caller, call, "the module exports no memory")),
    }
}

/// Copies `len` bytes at `ptr` out of guest memory.
pub(crate) fn read(
    caller: &mut Caller<'_, HostState>,
    call: &str,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<Vec<u8>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let mem = memory(caller, call)?;
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    let data = mem.data(&*caller);
    match start.checked_add(len).and_then(|end| data.get(start..end)) {
        Some(bytes) => Ok(bytes.to_vec()),
        None => Err(trap(
            caller,
            call,
            format!(
                "invalid memory access: {len} bytes at {start:#x} (memory is {} bytes)",
                data.len()
            ),
        )),
    }
}

/// Writes bytes at `ptr`.
pub(crate) fn write(
    caller: &mut Caller<'_, HostState>,
    call: &str,
    ptr: i32,
    bytes: &[u8],
) -> wasmtime::Result<()> {
    let mem = memory(caller, call)?;
    let start = ptr as u32 as usize;
    if mem.write(&mut *caller, start, bytes).is_err() {
        let size = mem.data_size(&*caller);
        return Err(trap(
            caller,
            call,
            format!(
                "invalid memory access: writing {} bytes at {start:#x} (memory is {size} bytes)",
                bytes.len()
            ),
        ));
    }
    Ok(())
}

/// Writes a u32 (LE) at `ptr`.
pub(crate) fn write_u32(
    caller: &mut Caller<'_, HostState>,
    call: &str,
    ptr: i32,
    value: u32,
) -> wasmtime::Result<()> {
    write(caller, call, ptr, &value.to_le_bytes())
}

/// Writes a u64 (LE) at `ptr`.
pub(crate) fn write_u64(
    caller: &mut Caller<'_, HostState>,
    call: &str,
    ptr: i32,
    value: u64,
) -> wasmtime::Result<()> {
    write(caller, call, ptr, &value.to_le_bytes())
}

/// Gives `bytes` to the guest: allocates in its memory, copies, and stores the pointer at
/// `ptr_ptr` and the size at `size_ptr` (null and 0 for empty data).
pub(crate) fn copy_out(
    caller: &mut Caller<'_, HostState>,
    call: &str,
    bytes: &[u8],
    ptr_ptr: i32,
    size_ptr: i32,
) -> wasmtime::Result<()> {
    let mut pointer = 0u32;
    if !bytes.is_empty() {
        pointer = allocate(caller, call, bytes.len())?;
        write(caller, call, pointer as i32, bytes)?;
    }
    write_u32(caller, call, ptr_ptr, pointer)?;
    write_u32(
        caller,
        call,
        size_ptr,
        u32::try_from(bytes.len()).unwrap_or(u32::MAX),
    )
}

fn allocate(caller: &mut Caller<'_, HostState>, call: &str, size: usize) -> wasmtime::Result<u32> {
    if let Some(typed) = caller.data().allocator.clone() {
        return call_allocator(caller, call, &typed, size);
    }
    let func = ALLOCATOR_EXPORTS
        .iter()
        .find_map(|name| caller.get_export(name).and_then(Extern::into_func));
    let Some(func) = func else {
        return Err(trap(
            caller,
            call,
            "the module exports neither proxy_on_memory_allocate nor malloc",
        ));
    };
    let typed = match func.typed::<i32, i32>(&*caller) {
        Ok(typed) => typed,
        Err(e) => {
            return Err(trap(
                caller,
                call,
                format!("the allocator has the wrong type: {e}"),
            ))
        }
    };
    call_allocator(caller, call, &typed, size)
}

fn call_allocator(
    caller: &mut Caller<'_, HostState>,
    call: &str,
    typed: &TypedFunc<i32, i32>,
    size: usize,
) -> wasmtime::Result<u32> {
    let size = i32::try_from(size)
        .map_err(|_| trap(caller, call, format!("cannot allocate {size} bytes")))?;
    let pointer = typed.call(&mut *caller, size)?;
    if pointer == 0 {
        return Err(trap(
            caller,
            call,
            format!("the module's allocator returned null for {size} bytes"),
        ));
    }
    Ok(pointer as u32)
}
