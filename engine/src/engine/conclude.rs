//! From judged and counted calls to the verdict: forward, answer, or first ask the rate
//! limit service.

use super::count::{Exhausted, Tally};
use super::judge::Call;
use super::{Engine, RequestInfo};
use crate::config::{DenialStyle, FailureMode};
use crate::legacy;
use crate::listing::PendingList;
use crate::outcome::{
    CallOutcome, CallReport, Forward, LimitState, Outcome, Reason, Reply, Report, ToolLabel,
    Verdict,
};
use crate::policy::{CounterId, Kind, Scope};
use crate::ratelimit::{CasStore, Clock};
use crate::reply::{self, Denial};
use crate::rls;

/// A judged call, owned: it outlives the request body while the service is asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Judged {
    kind: Kind,
    /// The request id's JSON text.
    id: Option<String>,
    label: ToolLabel,
    name: String,
    /// The policy's `reason` for this call's rules.
    configured: Option<String>,
    denial: Option<Denial>,
}

impl Judged {
    fn of(c: Call<'_>) -> Judged {
        Judged {
            kind: c.kind,
            id: c.id.map(|i| i.raw().to_string()),
            label: c.label,
            name: c.name,
            configured: c.rules.and_then(|r| r.reason.clone()),
            denial: c.denial,
        }
    }
}

/// A request waiting for the rate limit service: what to send, and everything needed to
/// finish the decision when the answer comes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consultation {
    /// The gRPC upstream: a serialized `GrpcService` naming the Envoy cluster.
    pub upstream: Vec<u8>,
    /// The serialized `RateLimitRequest`.
    pub message: Vec<u8>,
    /// How long to wait.
    pub timeout_ms: u32,
    calls: Vec<Judged>,
    batch: bool,
    /// The ids of a batch's other requests, answered too if the batch is refused.
    others: Vec<String>,
    lists: Vec<PendingList>,
    ids: Vec<String>,
    tally: Tally,
    report: Report,
    now: u64,
}

impl Consultation {
    /// The descriptors asked about, in order (the message encodes these).
    pub fn descriptors(&self) -> Vec<rls::Descriptor> {
        self.tally
            .fleet
            .iter()
            .map(|f| f.descriptor.clone())
            .collect()
    }
}

/// The service's answer, as the host got it.
pub enum ServiceAnswer<'a> {
    /// A response message.
    Response(&'a [u8]),
    /// No answer: a gRPC error or timeout, described.
    Failed(String),
}

impl Engine {
    /// Counts every allowed call (all or nothing), then decides or asks the service.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn conclude(
        &self,
        mut calls: Vec<Call<'_>>,
        lists: Vec<PendingList>,
        ids: Vec<String>,
        batch: bool,
        others: Vec<String>,
        info: &RequestInfo,
        store: &impl CasStore,
        clock: &impl Clock,
        mut report: Report,
    ) -> Outcome {
        let now = clock.now_nanos();
        let mut tally = Tally::default();
        if calls.iter().all(|c| c.denial.is_none()) {
            for (i, c) in calls.iter_mut().enumerate() {
                if let Err(d) = self.count(i, c, info, store, now, &mut tally, &mut report) {
                    c.denial = Some(*d);
                    break;
                }
            }
            if calls.iter().any(|c| c.denial.is_some()) {
                self.release_all(&mut tally.held, store, &mut report);
                tally = Tally::default();
            }
        }
        let calls: Vec<Judged> = calls.into_iter().map(Judged::of).collect();
        if !tally.fleet.is_empty() {
            if let Some(service) = &self.config.settings.rate_limit_service {
                let descriptors: Vec<rls::Descriptor> =
                    tally.fleet.iter().map(|f| f.descriptor.clone()).collect();
                return Outcome {
                    verdict: Verdict::Consult(Box::new(Consultation {
                        upstream: rls::grpc_service(&service.cluster),
                        message: rls::encode_request(&service.domain, &descriptors),
                        timeout_ms: service.timeout_ms,
                        calls,
                        batch,
                        others,
                        lists,
                        ids,
                        tally,
                        report: report.clone(),
                        now,
                    })),
                    report,
                };
            }
        }
        self.finish(calls, batch, &others, lists, ids, tally, report)
    }

    /// Finishes a consulted request with the service's answer.
    pub fn resume(
        &self,
        c: Consultation,
        answer: ServiceAnswer<'_>,
        store: &impl CasStore,
    ) -> Outcome {
        let Consultation {
            mut calls,
            batch,
            others,
            lists,
            ids,
            mut tally,
            mut report,
            now,
            ..
        } = c;
        let decoded = match answer {
            ServiceAnswer::Response(bytes) => {
                rls::decode_response(bytes).ok_or_else(|| "an undecodable response".to_string())
            }
            ServiceAnswer::Failed(why) => Err(why),
        };
        let failure = match decoded {
            Ok(r) if r.overall == rls::Code::Ok => {
                self.shadow_count(&tally.fleet, store, &mut report);
                for (i, f) in tally.fleet.iter().enumerate() {
                    let status = r.statuses.get(i);
                    tally.limits.push(LimitState {
                        counter: f.counter_name.clone(),
                        max: f.max,
                        window_secs: f.window_kind.seconds(),
                        remaining: status.map_or(0, |s| u64::from(s.remaining)),
                        reset_secs: status
                            .and_then(|s| s.reset_secs)
                            .unwrap_or_else(|| f.window_kind.seconds_left(now)),
                    });
                }
                return self.finish(calls, batch, &others, lists, ids, tally, report);
            }
            Ok(r) if r.overall == rls::Code::OverLimit => {
                let at = r
                    .statuses
                    .iter()
                    .position(|s| s.code == rls::Code::OverLimit)
                    .unwrap_or(0);
                if let (Some(f), Some(status)) = (
                    tally.fleet.get(at),
                    r.statuses.get(at).copied().or(Some(rls::Status {
                        code: rls::Code::OverLimit,
                        remaining: 0,
                        reset_secs: None,
                    })),
                ) {
                    let reset = status
                        .reset_secs
                        .unwrap_or_else(|| f.window_kind.seconds_left(now))
                        .max(1);
                    if let Some(call) = calls.get_mut(f.call) {
                        let e = Exhausted {
                            rule: &f.rule,
                            counter: &f.counter_name,
                            max: f.max,
                            window: f.window_kind,
                            per_call: f.per_call,
                            count: f.max.saturating_sub(u64::from(status.remaining)),
                            reset,
                        };
                        call.denial = Some(self.rate_limited(
                            call.kind,
                            &call.name,
                            call.configured.as_deref(),
                            &e,
                        ));
                    }
                }
                None
            }
            Ok(_) => Some("an answer with an unknown code".to_string()),
            Err(why) => Some(why),
        };
        if let Some(why) = failure {
            report.store_error = Some(["rate limit service: ", &why].concat());
            let allow = self
                .config
                .settings
                .rate_limit_service
                .as_ref()
                .is_some_and(|s| s.failure_mode == FailureMode::Allow);
            if allow {
                return self.finish(calls, batch, &others, lists, ids, tally, report);
            }
            if let Some(f) = tally.fleet.first() {
                if let Some(call) = calls.get_mut(f.call) {
                    let mut d = self.denial(
                        call.kind,
                        &call.name,
                        Reason::StoreError,
                        f.rule.clone(),
                        None,
                        "the rate limit service did not answer, so the call was not sent; try again shortly",
                    );
                    d.counter = Some(f.counter_name.clone());
                    d.retry_after = Some(1);
                    call.denial = Some(d);
                }
            }
        }
        self.release_all(&mut tally.held, store, &mut report);
        self.finish(calls, batch, &others, lists, ids, Tally::default(), report)
    }

    /// Builds the verdict of judged calls.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        mut calls: Vec<Judged>,
        batch: bool,
        others: &[String],
        lists: Vec<PendingList>,
        ids: Vec<String>,
        tally: Tally,
        mut report: Report,
    ) -> Outcome {
        let denied = calls.iter().any(|c| c.denial.is_some());
        if denied && batch {
            for c in &mut calls {
                if c.denial.is_none() {
                    c.denial = Some(self.denial(
                        c.kind,
                        &c.name,
                        Reason::BatchRefused,
                        "batch".into(),
                        None,
                        "another call in the same batch was denied, so none of it was sent",
                    ));
                }
            }
        }
        report.calls = calls
            .iter()
            .map(|c| CallReport {
                kind: c.kind,
                tool: c.label,
                name: c.name.clone(),
                outcome: match &c.denial {
                    None => CallOutcome::Allowed,
                    Some(d) => CallOutcome::Denied {
                        reason: d.reason,
                        rule: d.rule.clone(),
                        counter: d.counter.clone(),
                    },
                },
            })
            .collect();
        if !denied || self.shadow() {
            let (limits, held) = if denied {
                (Vec::new(), Vec::new())
            } else {
                // Only counts every caller shares are given back if the server turns the
                // request away (see `Engine::refused_upstream`): reading the answer's status
                // costs a host call, worth it where refused callers would spend others'
                // budget, not for a caller's own.
                let policy = self.policy();
                let shared = |id: &CounterId| {
                    policy
                        .counter(*id)
                        .is_some_and(|d| d.scope == Scope::Global)
                };
                let held = tally
                    .held
                    .into_iter()
                    .filter(|(id, _)| shared(id))
                    .collect();
                (tally.limits, held)
            };
            return Outcome {
                verdict: Verdict::Forward(Forward {
                    limits,
                    held,
                    lists,
                    ids,
                    body: None,
                    answer: None,
                }),
                report,
            };
        }
        let reply = self.render(&calls, batch, others);
        if report.legacy_sse && !batch && calls.iter().all(|c| c.id.is_some()) {
            // Its client reads answers only on the GET stream: the server carries it there.
            return Outcome {
                verdict: Verdict::Forward(Forward {
                    body: Some(legacy::denial_ping(&reply.body)),
                    answer: Some(reply),
                    ..Forward::default()
                }),
                report,
            };
        }
        Outcome {
            verdict: Verdict::Respond(reply),
            report,
        }
    }

    fn render(&self, calls: &[Judged], batch: bool, others: &[String]) -> Reply {
        let s = &self.config.settings;
        let code = s.denial_error_code;
        // Only a tool call has a result type that can carry an error for the model.
        let style = |c: &Judged| {
            if c.kind == Kind::Tool {
                s.denial_style
            } else {
                DenialStyle::Error
            }
        };
        let mut headers = Vec::new();
        if let Some(l) = calls
            .iter()
            .filter_map(|c| c.denial.as_ref())
            .find_map(|d| d.limit.as_ref())
        {
            reply::rate_limit_headers(l, &mut headers);
        }
        let mut body = String::new();
        let answered: Vec<&Judged> = calls.iter().filter(|c| c.id.is_some()).collect();
        if batch && !(answered.is_empty() && others.is_empty()) {
            body.push('[');
            for (i, c) in answered.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                if let Some(d) = &c.denial {
                    reply::push_denial(&mut body, c.id.as_deref(), style(c), code, d);
                }
            }
            // Every request of the batch is answered, so no client waits on one for ever.
            let refused = Denial {
                reason: Reason::BatchRefused,
                rule: "batch".into(),
                shown_as: None,
                counter: None,
                retry_after: None,
                message: "Toolgate refused this request: another call in the same batch was denied, so none of it was sent.".into(),
                limit: None,
            };
            for (i, id) in others.iter().enumerate() {
                if i > 0 || !answered.is_empty() {
                    body.push(',');
                }
                reply::push_denial(&mut body, Some(id), DenialStyle::Error, code, &refused);
            }
            body.push(']');
        } else {
            let first = calls
                .iter()
                .filter_map(|c| c.denial.as_ref().map(|d| (c, d)))
                .find(|(_, d)| d.reason != Reason::BatchRefused);
            if let Some((c, d)) = first {
                let id = if batch { None } else { c.id.as_deref() };
                reply::push_denial(&mut body, id, style(c), code, d);
            }
        }
        reply::json_reply(body, headers)
    }
}
