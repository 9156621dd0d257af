//! A proxy-wasm host for tests: loads a module with wasmtime and plays Envoy's part.
//!
//! ```no_run
//! use host_tests::{modules, Envoy, Outcome, Request};
//!
//! let envoy = Envoy::builder(modules::probe())
//!     .configuration(r#"{"mode":"echo"}"#)
//!     .workers(2)
//!     .start()
//!     .expect("plugin starts");
//! let exchange = envoy.worker(0).send(
//!     Request::post("/mcp").header("content-type", "application/json").chunks(["{\"a\":", "1}"]),
//! );
//! assert_eq!(exchange.outcome, Outcome::Forwarded);
//! assert_eq!(exchange.upstream.body_text(), "{\"a\":1}");
//! ```
//!
//! See the README for what is emulated and where the host knowingly differs from Envoy.

pub mod abi;
pub mod callouts;
pub mod clock;
pub mod config;
pub mod envoy;
pub mod exchange;
pub mod headers;
mod hostcalls;
pub mod logs;
mod memory;
pub mod metrics;
pub mod modules;
pub mod properties;
pub mod request;
pub mod shared_data;
mod state;
mod stream;
mod vm;
pub mod worker;
pub mod workload;

pub use abi::{Action, LogLevel, Status};
pub use callouts::{GrpcCall, GrpcEvent, HttpCall, HttpCallReply};
pub use clock::VirtualClock;
pub use config::{FailurePolicy, PluginConfig};
pub use envoy::{Envoy, EnvoyBuilder, StartError};
pub use exchange::{
    Callback, ClientResponse, Direction, Exchange, LocalReply, Outcome, Stall, StallKind,
    UpstreamView, VmFailure,
};
pub use headers::Headers;
pub use logs::{LogLine, VmRole};
pub use metrics::{MetricValue, Metrics};
pub use properties::PropertyValue;
pub use request::{Request, UpstreamResponse};
pub use shared_data::{SharedData, SharedQueues};
pub use vm::load_module;
pub use worker::{OpenStream, Worker};
