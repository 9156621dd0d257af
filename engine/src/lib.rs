//! Toolgate's policy engine: PolicyLayer policies over MCP tool calls.
//!
//! Host-agnostic: no proxy-wasm dependency. The proxy-wasm filter, the `toolgate` command
//! and the browser playground all drive this same code.

pub mod condition;
pub mod config;
pub mod fold;
mod fold_table;
pub mod hash;
pub mod json;
pub mod names;
pub mod policy;
pub mod ratelimit;
