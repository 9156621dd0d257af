//! Toolgate policy engine.
