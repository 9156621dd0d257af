//! Time, injected: the host's wall clock in the filter, a hand-moved one in tests.

use std::sync::atomic::{AtomicU64, Ordering};

/// Wall-clock time as Unix nanoseconds (UTC).
pub trait Clock {
    /// Nanoseconds since the Unix epoch.
    fn now_nanos(&self) -> u64;
}

/// A clock that only moves when told.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock at `nanos`.
    pub fn at(nanos: u64) -> Self {
        ManualClock(AtomicU64::new(nanos))
    }

    /// A clock at a whole number of Unix seconds.
    pub fn at_secs(secs: u64) -> Self {
        Self::at(secs.saturating_mul(1_000_000_000))
    }

    /// Moves the clock forward.
    pub fn advance_nanos(&self, nanos: u64) {
        self.0.fetch_add(nanos, Ordering::SeqCst);
    }

    /// Moves the clock forward by whole seconds.
    pub fn advance_secs(&self, secs: u64) {
        self.advance_nanos(secs.saturating_mul(1_000_000_000));
    }

    /// Sets the clock.
    pub fn set_nanos(&self, nanos: u64) {
        self.0.store(nanos, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_nanos(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl<T: Clock + ?Sized> Clock for &T {
    fn now_nanos(&self) -> u64 {
        (**self).now_nanos()
    }
}
