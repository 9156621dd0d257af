//! Virtual time and deterministic randomness, shared by every VM of one [`crate::Envoy`].
//!
//! The wall clock (`proxy_get_current_time_nanoseconds`, WASI `clock_time_get(REALTIME)`)
//! and the monotonic clock (WASI `MONOTONIC`) only move when the test advances them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::SeedableRng;

/// 2026-01-01T00:00:00Z, the default start of the wall clock.
pub const DEFAULT_EPOCH_SECONDS: u64 = 1_767_225_600;

/// A clock the test controls. Cloning shares it.
#[derive(Clone, Debug)]
pub struct VirtualClock {
    inner: Arc<ClockInner>,
}

#[derive(Debug)]
struct ClockInner {
    wall_nanos: AtomicU64,
    monotonic_nanos: AtomicU64,
}

impl VirtualClock {
    /// A clock whose wall time starts at `start`.
    pub fn starting_at(start: SystemTime) -> VirtualClock {
        let nanos = start
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        VirtualClock {
            inner: Arc::new(ClockInner {
                wall_nanos: AtomicU64::new(nanos),
                monotonic_nanos: AtomicU64::new(1_000_000_000),
            }),
        }
    }

    /// Nanoseconds since the Unix epoch.
    pub fn wall_nanos(&self) -> u64 {
        self.inner.wall_nanos.load(Ordering::SeqCst)
    }

    /// The wall clock as a [`SystemTime`].
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.wall_nanos())
    }

    /// Monotonic nanoseconds (starts at one second).
    pub fn monotonic_nanos(&self) -> u64 {
        self.inner.monotonic_nanos.load(Ordering::SeqCst)
    }

    /// Moves both clocks forward.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.inner.wall_nanos.fetch_add(nanos, Ordering::SeqCst);
        self.inner
            .monotonic_nanos
            .fetch_add(nanos, Ordering::SeqCst);
    }

    /// Sets the wall clock (the monotonic clock never goes back).
    pub fn set_wall(&self, to: SystemTime) {
        let nanos = to
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        self.inner.wall_nanos.store(nanos, Ordering::SeqCst);
    }
}

impl Default for VirtualClock {
    fn default() -> Self {
        VirtualClock::starting_at(UNIX_EPOCH + Duration::from_secs(DEFAULT_EPOCH_SECONDS))
    }
}

pub(crate) struct WallClock(pub VirtualClock);

impl wasmtime_wasi::HostWallClock for WallClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        Duration::from_nanos(self.0.wall_nanos())
    }
}

pub(crate) struct MonotonicClock(pub VirtualClock);

impl wasmtime_wasi::HostMonotonicClock for MonotonicClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        self.0.monotonic_nanos()
    }
}

/// The random generator a VM gets: seeded, so a run repeats exactly.
pub(crate) fn seeded_rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}
