#![allow(dead_code, clippy::panic)]
//! Helpers shared by the self-tests.

use host_tests::{modules, Envoy, EnvoyBuilder};

/// A builder for the probe module with `configuration`.
pub fn probe(configuration: &str) -> EnvoyBuilder {
    Envoy::builder(modules::probe()).configuration(configuration)
}

/// A started probe Envoy with one worker.
pub fn start(configuration: &str) -> Envoy {
    probe(configuration)
        .start()
        .unwrap_or_else(|e| panic!("probe failed to start: {e}"))
}
