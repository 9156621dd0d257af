//! Toolgate's policy engine: PolicyLayer policies over MCP tool calls.
//!
//! Host-agnostic: no proxy-wasm dependency. The proxy-wasm filter, the `toolgate` command
//! and the browser playground all drive this same code.

pub mod condition;
pub mod config;
mod digits;
mod engine;
mod explain;
pub mod fold;
mod fold_table;
pub mod hash;
pub mod http;
mod join;
pub mod json;
pub mod lax_number;
pub mod legacy;
pub mod listing;
mod lossy;
pub mod mcp;
pub mod mcp_headers;
pub mod names;
pub mod offline;
pub mod outcome;
pub mod pattern;
pub mod policy;
pub mod query;
pub mod ratelimit;
pub mod regex;
pub mod reply;
pub mod respelling;
pub mod rls;
mod sort;
pub mod sse;
mod subslice;
mod substring;
pub mod uri;
mod words;

pub use engine::{
    namespace, Attributes, Consultation, Engine, Grant, Head, NoAttributes, RequestInfo,
    ResponseMode, ServiceAnswer,
};
