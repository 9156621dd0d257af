//! Captured log lines: `proxy_log`, and the module's stdout (info) and stderr (error) as
//! cpp-host turns WASI writes into log lines.

use std::fmt;
use std::sync::{Arc, Mutex};

use crate::abi::LogLevel;

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VmRole {
    /// The base VM Envoy loads first (only `_initialize`/`main` run on it).
    Base,
    /// The configuration canary (initialize, start, configure, then killed).
    Canary,
    /// The VM of worker thread `n`.
    Worker(usize),
}

impl fmt::Display for VmRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VmRole::Base => f.write_str("base"),
            VmRole::Canary => f.write_str("canary"),
            VmRole::Worker(n) => write!(f, "worker {n}"),
        }
    }
}

/// One captured log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Its level.
    pub level: LogLevel,
    /// The text (a trailing newline of stdout/stderr writes is removed).
    pub message: String,
    /// The VM that wrote it.
    pub vm: VmRole,
    /// The context that was current (0 outside any callback).
    pub context_id: u32,
    /// The callback that was running, e.g. `proxy_on_request_body`.
    pub callback: &'static str,
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}][{}][ctx {}][{}] {}",
            self.level, self.vm, self.context_id, self.callback, self.message
        )
    }
}

/// The shared list of captured lines. Cloning shares it.
#[derive(Clone, Default, Debug)]
pub struct LogSink {
    lines: Arc<Mutex<Vec<LogLine>>>,
}

impl LogSink {
    pub(crate) fn push(&self, line: LogLine) {
        if let Ok(mut lines) = self.lines.lock() {
            lines.push(line);
        }
    }

    /// Every line so far.
    pub fn all(&self) -> Vec<LogLine> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The lines at `level` or above.
    pub fn at_least(&self, level: LogLevel) -> Vec<LogLine> {
        self.all()
            .into_iter()
            .filter(|l| l.level >= level)
            .collect()
    }

    /// The lines whose message contains `needle`.
    pub fn containing(&self, needle: &str) -> Vec<LogLine> {
        self.all()
            .into_iter()
            .filter(|l| l.message.contains(needle))
            .collect()
    }

    /// How many lines were captured.
    pub fn len(&self) -> usize {
        self.lines.lock().map(|l| l.len()).unwrap_or(0)
    }

    /// Whether no line was captured.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every line so far.
    pub fn clear(&self) {
        if let Ok(mut lines) = self.lines.lock() {
            lines.clear();
        }
    }
}
