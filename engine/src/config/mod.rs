//! Loading a configuration document: parse strictly, then compile into runtime types,
//! collecting every problem with its JSON path.

mod path;
mod policy_reader;
mod problems;
mod read;
mod settings;

pub use path::Path;
pub use problems::Problem;
pub use settings::{
    DenialStyle, FailureMode, GrantSource, Mode, RateLimitService, Settings, DEFAULT_COUNTER_SLOTS,
};

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
            read::is_kind(root),
            "a JSON object: a PolicyLayer policy, or settings with a \"policy\"",
        );
        return Err(problems.into_vec());
    }

    let bare = root.get("version").is_some();
    let config = if bare {
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
    if let Some(c) = &config {
        check_service_limits(c, if bare { "" } else { "policy." }, &mut problems);
    }
    match config {
        Some(c) if problems.is_empty() => Ok(c),
        _ => Err(problems.into_vec()),
    }
}

/// Fleet-wide limits need the service, must fit its 32-bit `requests_per_unit`, and one
/// counter keeps its count in one place.
fn check_service_limits(c: &Config, prefix: &str, problems: &mut Problems) {
    use crate::policy::LimitStore;
    // Per counter id (ids are positions in the policy's counters): the first limit's store.
    let mut first: Vec<Option<(LimitStore, &str)>> = vec![None; c.policy.counters.len()];
    for l in c.policy.limits() {
        match first.get_mut(l.counter.0) {
            Some(Some((store, at))) if *store != l.store => problems.push_at(
                &[prefix, &l.rule, ".store"].concat(),
                [
                    "a different store from the same counter's limit at ",
                    prefix,
                    at,
                ]
                .concat(),
                "one store for every limit of a counter",
            ),
            Some(Some(_)) | None => {}
            Some(slot) => *slot = Some((l.store, &l.rule)),
        }
    }
    for l in c.policy.limits().filter(|l| l.store == LimitStore::Service) {
        let at = |field: &str| [prefix, &l.rule, ".", field].concat();
        if c.settings.rate_limit_service.is_none() {
            problems.push_at(
                &at("store"),
                "\"service\" without a rate_limit_service setting",
                "a rate_limit_service block beside the policy (or \"store\": \"local\")",
            );
        }
        if l.max.get() > u64::from(u32::MAX) {
            problems.push_at(
                &at("max"),
                {
                    let mut s = String::new();
                    crate::digits::push_decimal(&mut s, l.max.get());
                    s.push_str(" is over 4294967295");
                    s
                },
                "a max the rate limit service protocol can carry",
            );
        }
    }
}

#[cfg(test)]
mod tests;
