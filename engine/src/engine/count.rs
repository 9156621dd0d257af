//! Counting a call against its limits: local ones in shared data now, fleet-wide ones
//! gathered for the rate limit service.

use super::judge::Call;
use super::{Engine, Grant};
use crate::condition::ArgPath;
use crate::digits::DecimalText;
use crate::json::Value;
use crate::outcome::{Forward, LimitState, Reason, Report};
use crate::policy::{CounterId, Increment, Limit, LimitStore, Scope};
use crate::ratelimit::{acquire, peek, release, Admission, CasStore, Held, Window, SHARED_TAG};
use crate::reply::Denial;
use crate::rls;

/// A fleet-wide limit of an allowed call, asked of the rate limit service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct FleetLimit {
    /// Index of the call in the request.
    pub call: usize,
    pub counter: CounterId,
    /// The local shadow count's slot tag and window.
    pub tag: u64,
    pub window: u64,
    pub max: u64,
    pub amount: u64,
    pub rule: String,
    pub counter_name: String,
    pub window_kind: Window,
    pub per_call: bool,
    pub descriptor: rls::Descriptor,
}

/// What counting the calls of one request produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Tally {
    /// Local counts taken (undone if the request is denied after all).
    pub held: Vec<(CounterId, Held)>,
    /// Local limit states, for `RateLimit` headers.
    pub limits: Vec<LimitState>,
    /// Fleet-wide limits to ask about.
    pub fleet: Vec<FleetLimit>,
}

/// The `RateLimitUnit` of a window.
fn unit(w: Window) -> u32 {
    match w {
        Window::Second => 1,
        Window::Minute => 2,
        Window::Hour => 3,
        Window::Day => 4,
    }
}

/// What a denied rate limit needs for its message.
pub(super) struct Exhausted<'a> {
    pub rule: &'a str,
    pub counter: &'a str,
    pub max: u64,
    pub window: Window,
    pub per_call: bool,
    pub count: u64,
    pub reset: u64,
}

impl Engine {
    /// The denial of a call over a limit.
    pub(super) fn rate_limited(
        &self,
        c_kind: crate::policy::Kind,
        name: &str,
        configured: Option<&str>,
        e: &Exhausted<'_>,
    ) -> Denial {
        let plural =
            |n: u64, one: &'static str, many: &'static str| if n == 1 { one } else { many };
        let unit = if e.per_call {
            plural(e.max, "call", "calls")
        } else {
            plural(e.max, "unit", "units")
        };
        let why = format!(
            "rate limit of {} {unit} per {} reached (counter \"{}\"); retry in {} {}",
            DecimalText::of(e.max),
            e.window.name(),
            e.counter,
            DecimalText::of(e.reset),
            plural(e.reset, "second", "seconds"),
        );
        let mut d = self.denial(
            c_kind,
            name,
            Reason::RateLimited,
            e.rule.to_string(),
            configured,
            &why,
        );
        d.counter = Some(e.counter.to_string());
        d.retry_after = Some(e.reset);
        d.limit = Some(LimitState {
            counter: e.counter.to_string(),
            max: e.max,
            window_secs: e.window.seconds(),
            remaining: e.max.saturating_sub(e.count),
            reset_secs: e.reset,
        });
        d
    }

    /// Counts call `index` against its limits (all or nothing is up to the caller).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn count(
        &self,
        index: usize,
        c: &Call<'_>,
        info: &super::RequestInfo,
        store: &impl CasStore,
        now: u64,
        tally: &mut Tally,
        report: &mut Report,
    ) -> Result<(), Box<Denial>> {
        let policy = &self.config.policy;
        let configured = c.rules.and_then(|r| r.reason.as_deref());
        let own = c.rules.map(|r| r.limits.as_slice()).unwrap_or(&[]);
        let shared: &[Limit] = if c.kind == crate::policy::Kind::Tool {
            &policy.all_tools
        } else {
            &[]
        };
        let window_secs = |id: CounterId| policy.counter(id).map_or(0, |d| d.window.seconds());
        // Limits naming one counter count once: the smallest max, the largest increment.
        let mut groups: Vec<(CounterId, &Limit, u64)> =
            Vec::with_capacity(own.len() + c.also.len() + shared.len());
        for l in own
            .iter()
            .chain(c.also.iter().copied())
            .chain(shared.iter())
        {
            let amount = self.amount(l, c.arguments).map_err(|why| {
                Box::new(self.denial(
                    c.kind,
                    &c.name,
                    Reason::InvalidIncrement,
                    l.rule.clone(),
                    configured,
                    &why,
                ))
            })?;
            match groups.iter_mut().find(|(id, _, _)| *id == l.counter) {
                Some(g) => {
                    if l.max < g.1.max {
                        g.1 = l;
                    }
                    g.2 = g.2.max(amount);
                }
                // The longest window first: when several limits are spent, the denial
                // names the one that stays spent longest (windows are aligned, so a longer
                // one never ends sooner), and an agent that retries when told is not
                // refused again then.
                None => {
                    let at = groups
                        .iter()
                        .position(|g| window_secs(g.0) < window_secs(l.counter))
                        .unwrap_or(groups.len());
                    groups.insert(at, (l.counter, l, amount));
                }
            }
        }
        let retries = self.config.settings.cas_retries.get();
        for (id, limit, amount) in groups {
            let fail = |why: &str| {
                Box::new(self.denial(
                    c.kind,
                    &c.name,
                    Reason::StoreError,
                    limit.rule.clone(),
                    None,
                    why,
                ))
            };
            let (Some(def), Some(keys)) = (policy.counter(id), self.counters.get(id.0)) else {
                return Err(fail("the policy's counters are inconsistent"));
            };
            let tag = match (def.scope, info.grant) {
                (Scope::Global, _) => SHARED_TAG,
                (Scope::Grant, Some(g)) => g.tag,
                (Scope::Session, Some(g)) => g.session_tag,
                (_, None) => {
                    return Err(Box::new(self.denial(
                        c.kind,
                        &c.name,
                        Reason::NoGrant,
                        limit.rule.clone(),
                        None,
                        "the caller could not be identified for its rate limit (no credential was sent)",
                    )))
                }
            };
            let window = def.window.start(now / 1_000_000_000);
            let reset = def.window.seconds_left(now);
            let max = limit.max.get();
            let exhausted = |count: u64| Exhausted {
                rule: &limit.rule,
                counter: &def.name,
                max,
                window: def.window,
                per_call: limit.increment == Increment::One,
                count,
                reset,
            };
            let store_failure = |e: crate::ratelimit::StoreError, report: &mut Report| {
                report.store_error = Some(e.0.to_string());
                let mut d = self.denial(
                    c.kind,
                    &c.name,
                    Reason::StoreError,
                    limit.rule.clone(),
                    None,
                    "the rate-limit store failed, so the call was not sent; try again shortly",
                );
                d.counter = Some(def.name.clone());
                d.retry_after = Some(1);
                Box::new(d)
            };
            if limit.store == LimitStore::Service {
                // Calls of one request against one descriptor add up: a service that
                // checks each descriptor against the count from before the request would
                // let a batch through whole, so a request over the limit on its own is
                // refused here. With the pre-check, what this Envoy has counted adds in.
                let mut seen = tally
                    .fleet
                    .iter()
                    .filter(|f| f.counter == id && f.tag == tag && f.window == window)
                    .fold(0u64, |sum, f| sum.saturating_add(f.amount));
                let precheck = self
                    .config
                    .settings
                    .rate_limit_service
                    .as_ref()
                    .is_some_and(|s| s.local_precheck);
                if precheck {
                    seen = seen.saturating_add(
                        peek(store, keys, tag, window).map_err(|e| store_failure(e, report))?,
                    );
                }
                if seen.saturating_add(amount.max(1)) > max {
                    return Err(Box::new(self.rate_limited(
                        c.kind,
                        &c.name,
                        configured,
                        &exhausted(seen),
                    )));
                }
                let mut entries = vec![
                    ("counter".to_string(), def.name.clone()),
                    ("scope".to_string(), descriptor_scope(def.scope, info.grant)),
                ];
                if let Some(owner) = self.counter_owner.get(id.0).cloned().flatten() {
                    entries.push(("tool".to_string(), owner));
                }
                tally.fleet.push(FleetLimit {
                    call: index,
                    counter: id,
                    tag,
                    window,
                    max,
                    amount,
                    rule: limit.rule.clone(),
                    counter_name: def.name.clone(),
                    window_kind: def.window,
                    per_call: limit.increment == Increment::One,
                    descriptor: rls::Descriptor {
                        entries,
                        requests_per_unit: u32::try_from(max).unwrap_or(u32::MAX),
                        unit: unit(def.window),
                        hits_addend: amount,
                    },
                });
                continue;
            }
            match acquire(store, keys, tag, window, amount, max, retries) {
                Ok(Admission::Admitted(h)) => {
                    tally.held.push((id, h));
                    tally.limits.push(LimitState {
                        counter: def.name.clone(),
                        max,
                        window_secs: def.window.seconds(),
                        remaining: max.saturating_sub(h.count),
                        reset_secs: reset,
                    });
                }
                Ok(Admission::Denied { count }) => {
                    return Err(Box::new(self.rate_limited(
                        c.kind,
                        &c.name,
                        configured,
                        &exhausted(count),
                    )));
                }
                Err(e) => return Err(store_failure(e, report)),
            }
        }
        Ok(())
    }

    /// Gives back the `global` counts of a forwarded request the server turned away, given
    /// the status of its answer: 401, 403, 405, 406, 413 and 415 (missing credentials, a
    /// method, `Accept`, size or content type the transport refuses) come before any
    /// message is dispatched, so the calls it carried never happened and, counted, would
    /// let callers the server refuses spend every caller's limit. Every other status keeps
    /// them: the call ran, or may have. The Python SDK's 2026-07-28 transport answers a
    /// handler's error with 400 or 404 (a tool that acted, then asked for sampling with no
    /// back-channel, gets 400), and a 5xx may follow a call that ran. Per-grant and
    /// per-session counts stay (a caller's own), and so do fleet-wide ones (the rate limit
    /// service protocol has no release). `Err` says why a count could not be given back.
    pub fn refused_upstream(
        &self,
        status: &[u8],
        forward: &mut Forward,
        store: &impl CasStore,
    ) -> Result<bool, String> {
        let refused = matches!(
            status,
            [b'4', b'0', b'1' | b'3' | b'5' | b'6'] | [b'4', b'1', b'3' | b'5']
        );
        if forward.held.is_empty() || !refused {
            return Ok(false);
        }
        let mut report = Report::default();
        self.release_all(&mut forward.held, store, &mut report);
        forward.limits.clear();
        report.store_error.map_or(Ok(true), Err)
    }

    /// Undoes local counts of a request that ends up denied (best effort).
    pub(super) fn release_all(
        &self,
        held: &mut Vec<(CounterId, Held)>,
        store: &impl CasStore,
        report: &mut Report,
    ) {
        let retries = self.config.settings.cas_retries.get();
        for (id, h) in held.drain(..).rev() {
            if let Some(keys) = self.counters.get(id.0) {
                if let Err(e) = release(store, keys, h, retries) {
                    report.store_error = Some(e.0.to_string());
                }
            }
        }
    }

    /// Records admitted fleet-wide calls in the local shadow counts (for the pre-check).
    pub(super) fn shadow_count(
        &self,
        fleet: &[FleetLimit],
        store: &impl CasStore,
        report: &mut Report,
    ) {
        let retries = self.config.settings.cas_retries.get();
        for f in fleet {
            if let Some(keys) = self.counters.get(f.counter.0) {
                if let Err(e) = acquire(store, keys, f.tag, f.window, f.amount, u64::MAX, retries) {
                    report.store_error = Some(e.0.to_string());
                }
            }
        }
    }

    /// Units a call adds under a limit.
    fn amount(&self, l: &Limit, arguments: Option<Value<'_>>) -> Result<u64, String> {
        let path: &ArgPath = match &l.increment {
            Increment::One => return Ok(1),
            Increment::From(p) => p,
        };
        let bad = || {
            format!(
                "argument \"{}\" must be a non-negative number (it is counted against a limit)",
                path.argument()
            )
        };
        let r = path.resolve(arguments);
        // Under either reading of the keys, count the larger amount.
        let mut amount = None;
        for v in [r.exact, r.folded].into_iter().flatten() {
            let n = v.as_number().and_then(|n| n.ceil_u64()).ok_or_else(bad)?;
            amount = Some(amount.map_or(n, |a: u64| a.max(n)));
        }
        amount.ok_or_else(bad)
    }
}

/// A fleet descriptor's `scope` value (built only for the rate limit service).
fn descriptor_scope(scope: Scope, grant: Option<Grant>) -> String {
    match (scope, grant) {
        (Scope::Grant, Some(g)) => ["grant:", &crate::hash::hex16(g.fingerprint)].concat(),
        (Scope::Session, Some(g)) => {
            ["session:", &crate::hash::hex16(g.session_fingerprint)].concat()
        }
        _ => "global".to_string(),
    }
}
