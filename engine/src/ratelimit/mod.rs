//! Rate limiting: calendar windows, the counter-slot algorithm over a CAS store, and the
//! injected clock.

mod window;

pub use window::Window;
