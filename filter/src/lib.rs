//! Toolgate proxy-wasm filter.
