//! proxy-wasm test host.
