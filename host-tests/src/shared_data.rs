//! Shared data and shared queues with proxy-wasm-cpp-host's semantics, in one store for
//! every VM of an [`crate::Envoy`] (keyed by `vm_id`, like Envoy's process-wide store).
//!
//! Shared data (`src/shared_data.cc`):
//! - `set` with cas 0 writes unconditionally;
//! - a non-zero cas that differs from the stored one returns `CAS_MISMATCH`;
//! - a write to a missing key is never CAS-checked (it inserts, whatever the cas);
//! - `get` of a missing key returns `NOT_FOUND`;
//! - every write takes the next token of one global counter that starts at 1 and skips 0;
//! - nothing deletes a key.
//!
//! Shared queues (`src/shared_queue.cc`): `register` returns the same token for the same
//! (vm_id, name) and makes the registering context the one told `on_queue_ready`;
//! `resolve` of an unknown queue is `NOT_FOUND`; `dequeue` of an empty queue is `EMPTY`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use crate::abi::Status;
use crate::logs::VmRole;

#[derive(Default, Debug)]
struct Store {
    next_cas: u32,
    maps: HashMap<String, BTreeMap<String, (Vec<u8>, u32)>>,
    /// Conditional writes still to lose, as if another worker wrote first.
    contended: u64,
}

impl Store {
    fn next_cas(&mut self) -> u32 {
        if self.next_cas == 0 {
            self.next_cas = 1;
        }
        let cas = self.next_cas;
        self.next_cas = self.next_cas.wrapping_add(1);
        if self.next_cas == 0 {
            self.next_cas = 1;
        }
        cas
    }
}

/// The shared-data store. Cloning shares it.
#[derive(Clone, Default, Debug)]
pub struct SharedData {
    inner: Arc<Mutex<Store>>,
}

impl SharedData {
    /// `proxy_get_shared_data`: the value and its CAS token, or `NOT_FOUND`.
    pub fn get(&self, vm_id: &str, key: &str) -> Result<(Vec<u8>, u32), Status> {
        let store = self.inner.lock().map_err(|_| Status::InternalFailure)?;
        store
            .maps
            .get(vm_id)
            .and_then(|m| m.get(key))
            .cloned()
            .ok_or(Status::NotFound)
    }

    /// `proxy_set_shared_data` with cpp-host's rules (see the module docs).
    pub fn set(&self, vm_id: &str, key: &str, value: &[u8], cas: u32) -> Status {
        let Ok(mut store) = self.inner.lock() else {
            return Status::InternalFailure;
        };
        let exists = store
            .maps
            .get(vm_id)
            .and_then(|m| m.get(key))
            .map(|(_, c)| *c);
        if let Some(current) = exists {
            if cas != 0 && cas != current {
                return Status::CasMismatch;
            }
            if cas != 0 && store.contended > 0 {
                // Another worker won the race: its write moves the token on.
                store.contended -= 1;
                let token = store.next_cas();
                if let Some(entry) = store.maps.get_mut(vm_id).and_then(|m| m.get_mut(key)) {
                    entry.1 = token;
                }
                return Status::CasMismatch;
            }
        }
        let token = store.next_cas();
        // An existing entry is assigned in place, as cpp-host does.
        if let Some(entry) = store.maps.get_mut(vm_id).and_then(|m| m.get_mut(key)) {
            entry.0.clear();
            entry.0.extend_from_slice(value);
            entry.1 = token;
            return Status::Ok;
        }
        store
            .maps
            .entry(vm_id.to_string())
            .or_default()
            .insert(key.to_string(), (value.to_vec(), token));
        Status::Ok
    }

    /// The keys stored under `vm_id`, sorted.
    pub fn keys(&self, vm_id: &str) -> Vec<String> {
        self.inner
            .lock()
            .map(|s| {
                s.maps
                    .get(vm_id)
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }

    /// How many keys `vm_id` holds.
    pub fn len(&self, vm_id: &str) -> usize {
        self.inner
            .lock()
            .map(|s| s.maps.get(vm_id).map_or(0, |m| m.len()))
            .unwrap_or(0)
    }

    /// Whether `vm_id` holds no key.
    pub fn is_empty(&self, vm_id: &str) -> bool {
        self.len(vm_id) == 0
    }

    /// A value without its token.
    pub fn value(&self, vm_id: &str, key: &str) -> Option<Vec<u8>> {
        self.get(vm_id, key).ok().map(|(v, _)| v)
    }

    /// Makes the next `writes` compare-and-swap writes (non-zero cas on an existing key)
    /// lose a race, as when other workers keep writing the same key first: each returns
    /// `CAS_MISMATCH` and moves the key's token on, its value unchanged.
    pub fn contend(&self, writes: u64) {
        if let Ok(mut store) = self.inner.lock() {
            store.contended = writes;
        }
    }

    /// The token the next write will get.
    pub fn next_cas(&self) -> u32 {
        self.inner.lock().map(|s| s.next_cas.max(1)).unwrap_or(0)
    }
}

/// Who is told when a queue gets an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueOwner {
    /// The VM that registered the queue last.
    pub vm: VmRole,
    /// Its root context.
    pub context_id: u32,
}

#[derive(Debug)]
struct Queue {
    owner: QueueOwner,
    items: VecDeque<Vec<u8>>,
}

#[derive(Default, Debug)]
struct Queues {
    next_token: u32,
    tokens: HashMap<(String, String), u32>,
    queues: HashMap<u32, Queue>,
}

/// The shared-queue registry. Cloning shares it.
#[derive(Clone, Default, Debug)]
pub struct SharedQueues {
    inner: Arc<Mutex<Queues>>,
}

impl SharedQueues {
    /// `proxy_register_shared_queue`: the queue's token (existing items are kept).
    pub fn register(&self, vm_id: &str, name: &str, owner: QueueOwner) -> Result<u32, Status> {
        let mut q = self.inner.lock().map_err(|_| Status::InternalFailure)?;
        let key = (vm_id.to_string(), name.to_string());
        let token = match q.tokens.get(&key) {
            Some(token) => *token,
            None => {
                q.next_token = q.next_token.wrapping_add(1).max(1);
                let token = q.next_token;
                q.tokens.insert(key, token);
                token
            }
        };
        q.queues
            .entry(token)
            .and_modify(|queue| queue.owner = owner)
            .or_insert(Queue {
                owner,
                items: VecDeque::new(),
            });
        Ok(token)
    }

    /// `proxy_resolve_shared_queue`: the token, or `NOT_FOUND`.
    pub fn resolve(&self, vm_id: &str, name: &str) -> Result<u32, Status> {
        let q = self.inner.lock().map_err(|_| Status::InternalFailure)?;
        q.tokens
            .get(&(vm_id.to_string(), name.to_string()))
            .copied()
            .ok_or(Status::NotFound)
    }

    /// `proxy_enqueue_shared_queue`: appends, and returns whom to tell.
    pub fn enqueue(&self, token: u32, item: &[u8]) -> Result<QueueOwner, Status> {
        let mut q = self.inner.lock().map_err(|_| Status::InternalFailure)?;
        let queue = q.queues.get_mut(&token).ok_or(Status::NotFound)?;
        queue.items.push_back(item.to_vec());
        Ok(queue.owner)
    }

    /// `proxy_dequeue_shared_queue`: the oldest item, `EMPTY`, or `NOT_FOUND`.
    pub fn dequeue(&self, token: u32) -> Result<Vec<u8>, Status> {
        let mut q = self.inner.lock().map_err(|_| Status::InternalFailure)?;
        let queue = q.queues.get_mut(&token).ok_or(Status::NotFound)?;
        queue.items.pop_front().ok_or(Status::Empty)
    }

    /// How many items wait in the queue `token`.
    pub fn pending(&self, token: u32) -> usize {
        self.inner
            .lock()
            .map(|q| q.queues.get(&token).map_or(0, |queue| queue.items.len()))
            .unwrap_or(0)
    }
}
