//! Rate limiting: calendar windows, the counter-slot algorithm over a CAS store, and the
//! injected clock.

mod clock;
mod slots;
mod store;
mod window;

pub use clock::{Clock, ManualClock};
pub use slots::{acquire, peek, release, Admission, CounterKeys, Held, Slot, PROBES, SHARED_TAG};
pub use store::{CasStore, MemoryStore, SetOutcome, StoreError};
pub use window::Window;
