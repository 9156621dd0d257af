//! A rate limit service for Toolgate's fleet-wide limits, speaking Envoy's
//! `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`. It keeps no state of its
//! own: every count lives in Redis and is taken by one Lua script per request (so any
//! number of replicas can serve one Redis), in calendar windows of Redis' own clock.
//!
//! Each descriptor is expected to carry its limit (`limit { requests_per_unit, unit }`,
//! which Toolgate always sends) and may carry `hits_addend`; a descriptor without a limit
//! is not limited. All or nothing: when any descriptor of a request would go over, nothing
//! is counted and the answer is OVER_LIMIT.

use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{Code, DescriptorStatus};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::{
    RateLimitService, RateLimitServiceServer,
};
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use envoy_types::pb::google::protobuf::Duration;
use redis::aio::ConnectionManager;
use redis::Script;
use tonic::{Request, Response, Status};

/// Descriptors per request the service accepts (more is a client error).
pub const MAX_DESCRIPTORS: usize = 64;

/// The service: a Redis connection (reconnecting) and the counting script.
#[derive(Clone)]
pub struct Limiter {
    redis: ConnectionManager,
    script: Script,
}

/// Window seconds of an `envoy.type.v3.RateLimitUnit` (SECOND 1 .. DAY 4).
fn window_secs(unit: i32) -> Option<u64> {
    match unit {
        1 => Some(1),
        2 => Some(60),
        3 => Some(3_600),
        4 => Some(86_400),
        _ => None,
    }
}

/// `|`-separated and escaped, so no two descriptors share a key by accident.
fn escape(out: &mut String, s: &str) {
    for c in s.chars() {
        if matches!(c, '|' | '=' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// The base key of a descriptor (the window start is appended by the script).
pub fn key(domain: &str, d: &RateLimitDescriptor) -> String {
    let mut k = String::from("tgrl|");
    escape(&mut k, domain);
    for e in &d.entries {
        k.push('|');
        escape(&mut k, &e.key);
        k.push('=');
        escape(&mut k, &e.value);
    }
    k
}

impl Limiter {
    /// A limiter on the Redis at `url` (`redis://127.0.0.1:6379`); connects lazily and
    /// reconnects by itself.
    pub async fn connect(url: &str) -> Result<Limiter, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let redis = ConnectionManager::new(client).await?;
        Ok(Limiter {
            redis,
            script: Script::new(include_str!("count.lua")),
        })
    }

    /// Decides one request.
    pub async fn decide(&self, req: &RateLimitRequest) -> Result<RateLimitResponse, Status> {
        if req.descriptors.is_empty() {
            return Err(Status::invalid_argument("no descriptors"));
        }
        if req.descriptors.len() > MAX_DESCRIPTORS {
            return Err(Status::invalid_argument(format!(
                "more than {MAX_DESCRIPTORS} descriptors"
            )));
        }
        let mut invocation = self.script.prepare_invoke();
        for d in &req.descriptors {
            let (limit, window) = match &d.limit {
                Some(l) => {
                    let w = window_secs(l.unit).ok_or_else(|| {
                        Status::invalid_argument(format!("unsupported unit {}", l.unit))
                    })?;
                    (i64::from(l.requests_per_unit), w)
                }
                None => (-1, 86_400),
            };
            let hits = d
                .hits_addend
                .map(|h| h.value)
                .unwrap_or(if req.hits_addend == 0 {
                    1
                } else {
                    u64::from(req.hits_addend)
                });
            invocation
                .key(key(&req.domain, d))
                .arg(limit)
                .arg(hits)
                .arg(window);
        }
        let mut conn = self.redis.clone();
        let raw: Vec<i64> = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(|e| Status::unavailable(format!("redis: {e}")))?;
        let code = |v: i64| if v == 2 { Code::OverLimit } else { Code::Ok } as i32;
        let overall = raw
            .first()
            .copied()
            .ok_or_else(|| Status::internal("empty script result"))?;
        let statuses = raw
            .get(1..)
            .unwrap_or(&[])
            .chunks_exact(3)
            .map(|c| match *c {
                [cd, remaining, reset] => DescriptorStatus {
                    code: code(cd),
                    limit_remaining: u32::try_from(remaining.max(0)).unwrap_or(u32::MAX),
                    duration_until_reset: Some(Duration {
                        seconds: reset,
                        nanos: 0,
                    }),
                    ..Default::default()
                },
                _ => DescriptorStatus::default(),
            })
            .collect();
        Ok(RateLimitResponse {
            overall_code: code(overall),
            statuses,
            ..Default::default()
        })
    }

    /// The gRPC service.
    pub fn into_service(self) -> RateLimitServiceServer<Limiter> {
        RateLimitServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl RateLimitService for Limiter {
    async fn should_rate_limit(
        &self,
        request: Request<RateLimitRequest>,
    ) -> Result<Response<RateLimitResponse>, Status> {
        self.decide(request.get_ref()).await.map(Response::new)
    }
}
