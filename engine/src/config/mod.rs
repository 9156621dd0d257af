//! Loading a configuration document: parse strictly, then compile into runtime types,
//! collecting every problem with its JSON path.

mod path;
mod policy_reader;
mod problems;
mod read;
mod settings;

pub use path::Path;
pub use problems::Problem;
pub use settings::{DenialStyle, GrantSource, Mode, Settings, DEFAULT_COUNTER_SLOTS};

use crate::json::{KeyRule, Kind, Options, Validator};
use crate::policy::Policy;
use problems::Problems;
use read::{fields, required};

/// The deepest JSON a configuration may nest.
const CONFIG_MAX_DEPTH: u32 = 64;

/// A loaded configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The compiled policy.
    pub policy: Policy,
    /// Toolgate's settings.
    pub settings: Settings,
}

/// Loads a configuration document: a bare PolicyLayer policy (it has `version` at the
/// top), or settings with the policy under `policy`. Returns every problem found.
pub fn load(document: &[u8]) -> Result<Config, Vec<Problem>> {
    let mut problems = Problems::default();
    let root_path = Path::root();
    let opts = Options {
        max_depth: CONFIG_MAX_DEPTH,
        keys: KeyRule::Exact,
    };
    let root = match Validator::new().validate(document, opts) {
        Ok(v) => v,
        Err(e) => {
            problems.push(
                &root_path,
                e,
                "a JSON object: a PolicyLayer policy, or settings with a \"policy\"",
            );
            return Err(problems.into_vec());
        }
    };
    if root.kind() != Kind::Object {
        problems.push(
            &root_path,
            format!("{} is {}", read::quote(root), root.kind().name()),
            "a JSON object: a PolicyLayer policy, or settings with a \"policy\"",
        );
        return Err(problems.into_vec());
    }

    let config = if root.get("version").is_some() {
        policy_reader::read_policy(root, &root_path, &mut problems).map(|policy| Config {
            policy,
            settings: Settings::default(),
        })
    } else {
        let f = fields(
            root,
            &root_path,
            "Toolgate settings",
            settings::SETTINGS_FIELDS,
            &mut problems,
        );
        f.and_then(|f| {
            let settings = settings::read_settings(&f, &root_path, &mut problems);
            let policy = required(
                &f,
                &root_path,
                "policy",
                "a PolicyLayer policy document (an object with version, default, tools)",
                &mut problems,
            )?;
            let policy =
                policy_reader::read_policy(policy, &root_path.key("policy"), &mut problems)?;
            Some(Config { policy, settings })
        })
    };
    match config {
        Some(c) if problems.is_empty() => Ok(c),
        _ => Err(problems.into_vec()),
    }
}

#[cfg(test)]
mod tests;
