//! Configuration problems: each names its path, what was found and what was expected.

use super::path::Path;
use std::fmt;

/// One problem in a configuration document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where: `tools.cache_cas.limits[0].window`.
    pub path: String,
    /// What is there: `"minutes" is not a window`.
    pub found: String,
    /// What would be right: `second, minute, hour or day`.
    pub expected: String,
}

impl Problem {
    /// `path: found; expected expected` (built by hand, as the module logs it: formatting
    /// machinery weighs more in the module than this).
    pub fn text(&self) -> String {
        let mut s = self.path.clone();
        for part in [": ", &self.found, "; expected ", &self.expected] {
            s.push_str(part);
        }
        s
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

/// The problems found so far; loading continues past each one so all are reported.
#[derive(Debug, Default)]
pub struct Problems(Vec<Problem>);

impl Problems {
    /// Records a problem at `path`.
    pub fn push(&mut self, path: &Path, found: impl fmt::Display, expected: impl fmt::Display) {
        self.0.push(Problem {
            path: path.text(),
            found: found.to_string(),
            expected: expected.to_string(),
        });
    }

    /// Records a problem at a path already rendered.
    pub fn push_at(&mut self, path: &str, found: impl fmt::Display, expected: impl fmt::Display) {
        self.0.push(Problem {
            path: path.to_string(),
            found: found.to_string(),
            expected: expected.to_string(),
        });
    }

    /// Whether nothing was found wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The problems, in document order.
    pub fn into_vec(self) -> Vec<Problem> {
        self.0
    }
}
