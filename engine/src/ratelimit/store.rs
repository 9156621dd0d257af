//! The counter store: compare-and-swap over byte values, with proxy-wasm shared data's
//! exact semantics. The filter implements it over the host; tests use [`MemoryStore`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

/// The store could not be used; the engine fails closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreError(pub &'static str);

/// The outcome of a conditional write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetOutcome {
    /// The value was written.
    Written,
    /// The CAS token no longer matches: someone wrote in between.
    CasMismatch,
}

/// A CAS key-value store (proxy-wasm shared data).
///
/// Semantics (proxy-wasm-cpp-host): `get` of a missing key is `None`; `set` with `cas == 0`
/// writes unconditionally; with a non-zero `cas` it writes only if the key's token is still
/// `cas`, except that a missing key is always inserted; tokens are positive and change on
/// every write; nothing is ever deleted.
pub trait CasStore {
    /// The value and CAS token of `key`.
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError>;
    /// Writes `value` under `key` if `cas` still matches (0: unconditionally).
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<SetOutcome, StoreError>;
}

/// An in-memory [`CasStore`] with the host's exact semantics, safe to share between
/// threads (as shared data is shared between Envoy's workers), with failure injection.
#[derive(Debug, Default)]
pub struct MemoryStore {
    map: Mutex<HashMap<String, (Vec<u8>, u32)>>,
    next_cas: AtomicU32,
    /// When non-zero, this many further operations succeed and then every one fails.
    fail_after: AtomicU32,
    failing: std::sync::atomic::AtomicBool,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of keys (nothing is ever deleted).
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether the store has no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every operation from now on fails (`true`) or succeeds (`false`).
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Let `n` more operations succeed, then fail every one.
    pub fn fail_after(&self, n: u32) {
        self.fail_after.store(n.saturating_add(1), Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError("injected failure"));
        }
        let left = self.fail_after.load(Ordering::SeqCst);
        if left == 1 {
            self.failing.store(true, Ordering::SeqCst);
            return Err(StoreError("injected failure"));
        }
        if left > 1 {
            self.fail_after.store(left - 1, Ordering::SeqCst);
        }
        Ok(())
    }
}

impl CasStore for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        self.check()?;
        let map = self.map.lock().map_err(|_| StoreError("poisoned"))?;
        Ok(map.get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<SetOutcome, StoreError> {
        self.check()?;
        let mut map = self.map.lock().map_err(|_| StoreError("poisoned"))?;
        if let Some(entry) = map.get(key) {
            if cas != 0 && cas != entry.1 {
                return Ok(SetOutcome::CasMismatch);
            }
        }
        // Tokens advance only on a write, and never wrap to 0 (which means "no check").
        let token = self
            .next_cas
            .fetch_add(1, Ordering::SeqCst)
            .wrapping_add(1)
            .max(1);
        map.insert(key.to_string(), (value.to_vec(), token));
        Ok(SetOutcome::Written)
    }
}

impl<T: CasStore + ?Sized> CasStore for &T {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        (**self).get(key)
    }
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<SetOutcome, StoreError> {
        (**self).set(key, value, cas)
    }
}

impl<T: CasStore + ?Sized> CasStore for std::sync::Arc<T> {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        (**self).get(key)
    }
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<SetOutcome, StoreError> {
        (**self).set(key, value, cas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_semantics() {
        let s = MemoryStore::new();
        assert_eq!(s.get("k"), Ok(None));
        // A missing key is inserted even with a stale token.
        assert_eq!(s.set("k", b"a", 99), Ok(SetOutcome::Written));
        let (v, t1) = s.get("k").unwrap().unwrap();
        assert_eq!((v.as_slice(), t1), (b"a".as_slice(), 1));
        assert_eq!(s.set("k", b"b", t1 + 5), Ok(SetOutcome::CasMismatch));
        assert_eq!(s.set("k", b"b", t1), Ok(SetOutcome::Written));
        assert_eq!(s.set("k", b"c", t1), Ok(SetOutcome::CasMismatch));
        assert_eq!(s.set("k", b"c", 0), Ok(SetOutcome::Written));
        let (v, t) = s.get("k").unwrap().unwrap();
        assert_eq!((v.as_slice(), t), (b"c".as_slice(), 3));
        s.fail_after(1);
        assert!(s.get("k").is_ok());
        assert!(s.get("k").is_err());
        s.set_failing(false);
        s.fail_after(0);
    }
}
