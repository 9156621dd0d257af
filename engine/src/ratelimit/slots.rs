//! Counter slots: a bounded key space per (counter, scope) in a CAS store.
//!
//! A scope value (a grant or session, already hashed with a secret key into a non-zero
//! 64-bit tag) probes up to [`PROBES`] slots from a position its tag selects. A slot holds
//! `(window start, count, owner tag)`. Within one window a slot only ever goes from free to
//! owned, so a value's own slot always comes before the first free one it meets: the
//! probe stops at its own slot or claims the first free one. When every probed slot is
//! owned by others in the current window, the value counts in the counter's shared
//! overflow slot: a clash can only make limits bite earlier, never admit more.
//!
//! Keys are created up front ([`CounterKeys::create`]), in Envoy's configuration canary
//! before any worker runs, because shared data never CAS-checks the first insert of a key.

use super::store::{CasStore, SetOutcome, StoreError};
use crate::digits::push_decimal;
use crate::policy::{CounterDef, Scope};
use crate::words::le_word;

/// Slots probed per scope value before falling back to the overflow slot.
pub const PROBES: u32 = 8;

/// Bytes of a stored slot value: window start, count, owner tag (little-endian u64s).
const VALUE_LEN: usize = 24;

/// The tag of a slot nobody has counted in yet (real tags are never 0).
const EMPTY_TAG: u64 = 0;

/// The tag of the global scope's single slot and of the shared overflow slot.
pub const SHARED_TAG: u64 = 1;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct SlotValue {
    window: u64,
    count: u64,
    tag: u64,
}

impl SlotValue {
    fn encode(self) -> [u8; VALUE_LEN] {
        let mut out = [0u8; VALUE_LEN];
        for (chunk, word) in out
            .chunks_exact_mut(8)
            .zip([self.window, self.count, self.tag])
        {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<SlotValue, StoreError> {
        if bytes.len() != VALUE_LEN {
            return Err(StoreError("counter slot holds a value of the wrong size"));
        }
        let mut words = bytes.chunks_exact(8).map(le_word);
        Ok(SlotValue {
            window: words.next().unwrap_or(0),
            count: words.next().unwrap_or(0),
            tag: words.next().unwrap_or(0),
        })
    }
}

/// Which slot of a counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// One of the hashed slots.
    Index(u32),
    /// The shared overflow slot.
    Overflow,
}

/// The keys of one (counter, scope): `tg/<namespace>/<counter>/<scope>/<window s>/<slots>/<slot>`.
/// The window and slot count are part of the name, so changing either starts afresh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterKeys {
    prefix: String,
    slots: u32,
}

impl CounterKeys {
    /// The keys of `def` under `namespace` with `slots` slots (the global scope has one).
    pub fn new(namespace: &str, def: &CounterDef, slots: u32) -> CounterKeys {
        let slots = if def.scope == Scope::Global {
            1
        } else {
            slots.max(1)
        };
        CounterKeys {
            prefix: format!(
                "tg/{namespace}/{}/{}/{}/{slots}",
                def.name,
                def.scope.name(),
                crate::digits::DecimalText::of(def.window.seconds())
            ),
            slots,
        }
    }

    /// The number of hashed slots.
    pub fn slots(&self) -> u32 {
        self.slots
    }

    /// The key of a slot.
    pub fn key(&self, slot: Slot) -> String {
        // Built by hand: this runs for every counted call, and formatting machinery costs
        // more than the rest of the key's work.
        let mut key = String::with_capacity(self.prefix.len() + 12);
        key.push_str(&self.prefix);
        key.push('/');
        match slot {
            Slot::Index(i) => push_decimal(&mut key, u64::from(i)),
            Slot::Overflow => key.push('o'),
        }
        key
    }

    fn ready_key(&self) -> String {
        format!("{}/ready", self.prefix)
    }

    /// Creates every key not yet present (and a marker once all exist, so later workers
    /// skip the walk). Returns the number of keys created.
    pub fn create(&self, store: &impl CasStore) -> Result<u32, StoreError> {
        let ready = self.ready_key();
        if store.get(&ready)?.is_some() {
            return Ok(0);
        }
        let empty = SlotValue::default().encode();
        let mut created = 0;
        let slots = (0..self.slots).map(Slot::Index).chain([Slot::Overflow]);
        for slot in slots {
            let key = self.key(slot);
            if store.get(&key)?.is_none() {
                store.set(&key, &empty, 0)?;
                created += 1;
            }
        }
        store.set(&ready, b"1", 0)?;
        Ok(created)
    }

    fn probes(&self, tag: u64) -> impl Iterator<Item = Slot> + '_ {
        let start = (tag >> 16) % u64::from(self.slots);
        let n = PROBES.min(self.slots);
        (0..n).map(move |i| {
            let idx = (start + u64::from(i)) % u64::from(self.slots);
            Slot::Index(u32::try_from(idx).unwrap_or(0))
        })
    }
}

/// A successful acquisition, enough to undo it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    /// The slot counted in.
    pub slot: Slot,
    /// The window (start, Unix seconds) counted in.
    pub window: u64,
    /// The owner tag written.
    pub tag: u64,
    /// Units added.
    pub amount: u64,
    /// The slot's count after adding.
    pub count: u64,
}

/// The result of trying to count a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Counted.
    Admitted(Held),
    /// Over the limit; nothing was written. `count` is what the window already holds.
    Denied {
        /// Units already counted in the window.
        count: u64,
    },
}

struct Found {
    /// The window counted in: the caller's, or a later one another worker has opened.
    window: u64,
    slot: Slot,
    /// The slot's key (kept for the write that follows the read).
    key: String,
    value: SlotValue,
    cas: u32,
    /// The value already counts in this slot in the current window.
    own: bool,
}

fn read(store: &impl CasStore, key: &str) -> Result<(SlotValue, u32), StoreError> {
    match store.get(key)? {
        Some((bytes, cas)) => Ok((SlotValue::decode(&bytes)?, cas)),
        // Only if the keys were never created; the write below then inserts.
        None => Ok((SlotValue::default(), 0)),
    }
}

fn find(
    store: &impl CasStore,
    keys: &CounterKeys,
    tag: u64,
    window: u64,
) -> Result<Found, StoreError> {
    let mut window = window;
    // A slot another value holds in a later window means another worker's clock has passed
    // a boundary this one has not: the search restarts in that window. In the earlier one
    // the value's own slot may already be another's, and it would be counted afresh.
    for _ in 0..3 {
        match search(store, keys, tag, window)? {
            Search::Found(found) => return Ok(found),
            Search::Later(later) => window = later,
        }
    }
    Err(StoreError(
        "counter slots hold windows ahead of this worker's clock",
    ))
}

enum Search {
    Found(Found),
    /// A slot probed holds another value's count in this later window.
    Later(u64),
}

fn search(
    store: &impl CasStore,
    keys: &CounterKeys,
    tag: u64,
    window: u64,
) -> Result<Search, StoreError> {
    for slot in keys.probes(tag) {
        let key = keys.key(slot);
        let (value, cas) = read(store, &key)?;
        if value.tag == tag && value.window >= window {
            return Ok(Search::Found(Found {
                window,
                slot,
                key,
                value,
                cas,
                own: true,
            }));
        }
        if value.tag == EMPTY_TAG || value.window < window {
            return Ok(Search::Found(Found {
                window,
                slot,
                key,
                value,
                cas,
                own: false,
            }));
        }
        if value.window > window {
            return Ok(Search::Later(value.window));
        }
    }
    let key = keys.key(Slot::Overflow);
    let (value, cas) = read(store, &key)?;
    let own = value.tag != EMPTY_TAG && value.window >= window;
    Ok(Search::Found(Found {
        window,
        slot: Slot::Overflow,
        key,
        value,
        cas,
        own,
    }))
}

/// What the value tagged `tag` has counted in its own slot in the window starting at
/// `window` (no write). The overflow slot's count is every overflowing value's together,
/// not this one's: it reads as 0.
pub fn peek(
    store: &impl CasStore,
    keys: &CounterKeys,
    tag: u64,
    window: u64,
) -> Result<u64, StoreError> {
    let found = find(store, keys, tag, window)?;
    Ok(if found.own && found.slot != Slot::Overflow {
        found.value.count
    } else {
        0
    })
}

/// Counts `amount` units for the value tagged `tag` (non-zero) in the window starting at
/// `window`, if that keeps it at or under `max`. Exact under concurrency: a lost race
/// retries from a fresh read, up to `retries` times, then fails closed.
pub fn acquire(
    store: &impl CasStore,
    keys: &CounterKeys,
    tag: u64,
    window: u64,
    amount: u64,
    max: u64,
    retries: u32,
) -> Result<Admission, StoreError> {
    for _ in 0..retries {
        let found = find(store, keys, tag, window)?;
        let (current, at_window) = if found.own {
            // A clock a little ahead on another worker may have opened a later window:
            // counting there only limits earlier.
            (found.value.count, found.value.window)
        } else {
            (0, found.window)
        };
        // A call is admitted only while there is room for one unit, whatever it adds: a
        // zero amount past the limit could be read by the server as "the default".
        if current.checked_add(amount.max(1)).is_none_or(|n| n > max) {
            return Ok(Admission::Denied { count: current });
        }
        let next = current.saturating_add(amount);
        let owner = if found.slot == Slot::Overflow {
            SHARED_TAG
        } else {
            tag
        };
        let value = SlotValue {
            window: at_window,
            count: next,
            tag: owner,
        };
        match store.set(&found.key, &value.encode(), found.cas)? {
            SetOutcome::Written => {
                return Ok(Admission::Admitted(Held {
                    slot: found.slot,
                    window: at_window,
                    tag: owner,
                    amount,
                    count: next,
                }))
            }
            SetOutcome::CasMismatch => continue,
        }
    }
    Err(StoreError("compare-and-swap retries exhausted"))
}

/// Undoes an acquisition (a later limit of the same call denied it). Best effort: if the
/// window has moved on there is nothing to undo; if retries run out the count stays high,
/// which only limits earlier.
pub fn release(
    store: &impl CasStore,
    keys: &CounterKeys,
    held: Held,
    retries: u32,
) -> Result<(), StoreError> {
    if held.amount == 0 {
        return Ok(());
    }
    let key = keys.key(held.slot);
    for _ in 0..retries {
        let (value, cas) = read(store, &key)?;
        if value.window != held.window || value.tag != held.tag || value.count < held.amount {
            return Ok(());
        }
        let undone = SlotValue {
            count: value.count - held.amount,
            ..value
        };
        if store.set(&key, &undone.encode(), cas)? == SetOutcome::Written {
            return Ok(());
        }
    }
    Err(StoreError(
        "compare-and-swap retries exhausted while undoing a count",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::store::MemoryStore;
    use crate::ratelimit::Window;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    fn keys(slots: u32, scope: Scope) -> CounterKeys {
        CounterKeys::new(
            "ns",
            &CounterDef {
                name: "c".into(),
                scope,
                window: Window::Minute,
            },
            slots,
        )
    }

    fn admitted(a: Admission) -> bool {
        matches!(a, Admission::Admitted(_))
    }

    #[test]
    fn keys_are_bounded_and_created_once() {
        let s = MemoryStore::new();
        let k = keys(16, Scope::Grant);
        assert_eq!(k.key(Slot::Index(3)), "tg/ns/c/grant/60/16/3");
        assert_eq!(k.create(&s), Ok(17));
        assert_eq!(k.create(&s), Ok(0));
        assert_eq!(s.len(), 18);
        // Thousands of distinct values never add keys.
        for v in 1..5000u64 {
            let tag = v.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            acquire(&s, &k, tag, 60, 1, 10, 8).unwrap();
        }
        assert_eq!(s.len(), 18);
        assert_eq!(
            keys(16, Scope::Global).key(Slot::Index(0)),
            "tg/ns/c/global/60/1/0"
        );
    }

    #[test]
    fn counts_to_max_per_window_and_resets() {
        let s = MemoryStore::new();
        let k = keys(64, Scope::Grant);
        k.create(&s).unwrap();
        let tag = 0xdead_beef_0000_0001;
        for i in 1..=30 {
            let a = acquire(&s, &k, tag, 600, 1, 30, 8).unwrap();
            assert!(matches!(a, Admission::Admitted(h) if h.count == i));
        }
        assert_eq!(
            acquire(&s, &k, tag, 600, 1, 30, 8),
            Ok(Admission::Denied { count: 30 })
        );
        // Another value has its own count.
        assert!(admitted(
            acquire(&s, &k, 0x1234_5678_9abc_def1, 600, 1, 30, 8).unwrap()
        ));
        // The next window starts at zero.
        let a = acquire(&s, &k, tag, 660, 1, 30, 8).unwrap();
        assert!(matches!(a, Admission::Admitted(h) if h.count == 1 && h.window == 660));
    }

    #[test]
    fn increments_and_oversized_amounts() {
        let s = MemoryStore::new();
        let k = keys(4, Scope::Grant);
        k.create(&s).unwrap();
        assert!(admitted(acquire(&s, &k, 7, 0, 60, 100, 8).unwrap()));
        assert_eq!(
            acquire(&s, &k, 7, 0, 41, 100, 8),
            Ok(Admission::Denied { count: 60 })
        );
        assert!(admitted(acquire(&s, &k, 7, 0, 40, 100, 8).unwrap()));
        assert_eq!(
            acquire(&s, &k, 9, 0, u64::MAX, 100, 8),
            Ok(Admission::Denied { count: 0 })
        );
    }

    #[test]
    fn full_probe_window_overflows_into_a_shared_slot() {
        let s = MemoryStore::new();
        let k = keys(2, Scope::Grant);
        k.create(&s).unwrap();
        // Two values fill both slots; a third shares the overflow slot with a fourth.
        for tag in [3u64, 5] {
            assert!(admitted(acquire(&s, &k, tag, 0, 1, 2, 8).unwrap()));
        }
        let a = acquire(&s, &k, 7, 0, 1, 2, 8).unwrap();
        assert!(matches!(a, Admission::Admitted(h) if h.slot == Slot::Overflow));
        assert!(admitted(acquire(&s, &k, 9, 0, 1, 2, 8).unwrap()));
        // The overflow count is shared: limited earlier, never later.
        assert_eq!(
            acquire(&s, &k, 7, 0, 1, 2, 8),
            Ok(Admission::Denied { count: 2 })
        );
        // Owners keep their own slots.
        assert!(admitted(acquire(&s, &k, 3, 0, 1, 2, 8).unwrap()));
        assert_eq!(
            acquire(&s, &k, 3, 0, 1, 2, 8),
            Ok(Admission::Denied { count: 2 })
        );
    }

    #[test]
    fn release_undoes_only_its_own_window() {
        let s = MemoryStore::new();
        let k = keys(8, Scope::Grant);
        k.create(&s).unwrap();
        let Admission::Admitted(h) = acquire(&s, &k, 11, 60, 3, 5, 8).unwrap() else {
            panic!("denied");
        };
        release(&s, &k, h, 8).unwrap();
        let a = acquire(&s, &k, 11, 60, 5, 5, 8).unwrap();
        assert!(matches!(a, Admission::Admitted(h) if h.count == 5));
        // After the window moved on, releasing an old hold changes nothing.
        let Admission::Admitted(new) = acquire(&s, &k, 11, 120, 1, 5, 8).unwrap() else {
            panic!("denied");
        };
        release(&s, &k, h, 8).unwrap();
        assert!(
            matches!(acquire(&s, &k, 11, 120, 1, 5, 8).unwrap(), Admission::Admitted(x) if x.count == new.count + 1)
        );
    }

    #[test]
    fn store_failures_and_corruption_fail_closed() {
        let s = MemoryStore::new();
        let k = keys(4, Scope::Grant);
        k.create(&s).unwrap();
        s.set(&k.key(Slot::Index(0)), b"garbage", 0).unwrap();
        s.set(&k.key(Slot::Index(1)), b"garbage", 0).unwrap();
        s.set(&k.key(Slot::Index(2)), b"garbage", 0).unwrap();
        s.set(&k.key(Slot::Index(3)), b"garbage", 0).unwrap();
        assert!(acquire(&s, &k, 5, 0, 1, 5, 8).is_err());
        let s = MemoryStore::new();
        k.create(&s).unwrap();
        s.set_failing(true);
        assert!(acquire(&s, &k, 5, 0, 1, 5, 8).is_err());
    }

    /// A store whose writes lose a race a set number of times.
    struct Contended {
        inner: MemoryStore,
        lose: AtomicU64,
    }

    impl CasStore for Contended {
        fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<SetOutcome, StoreError> {
            if self.lose.load(Ordering::SeqCst) > 0 {
                self.lose.fetch_sub(1, Ordering::SeqCst);
                return Ok(SetOutcome::CasMismatch);
            }
            self.inner.set(key, value, cas)
        }
    }

    #[test]
    fn retries_are_bounded() {
        let s = Contended {
            inner: MemoryStore::new(),
            lose: AtomicU64::new(3),
        };
        let k = keys(4, Scope::Grant);
        k.create(&s.inner).unwrap();
        assert!(admitted(acquire(&s, &k, 5, 0, 1, 5, 4).unwrap()));
        s.lose.store(10, Ordering::SeqCst);
        assert_eq!(
            acquire(&s, &k, 5, 0, 1, 5, 4),
            Err(StoreError("compare-and-swap retries exhausted"))
        );
    }

    #[test]
    fn exact_under_concurrency() {
        let s = Arc::new(MemoryStore::new());
        let k = Arc::new(keys(32, Scope::Grant));
        k.create(&*s).unwrap();
        for window in [0u64, 60, 120] {
            let admitted_total = Arc::new(AtomicU64::new(0));
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    let (s, k, n) = (s.clone(), k.clone(), admitted_total.clone());
                    std::thread::spawn(move || {
                        for _ in 0..200 {
                            if let Ok(Admission::Admitted(_)) =
                                acquire(&*s, &k, 42, window, 1, 100, 1000)
                            {
                                n.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(admitted_total.load(Ordering::SeqCst), 100);
        }
    }
}
