#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The service against a real Redis (Debian's `redis-server`, started per test).

use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::{
    Entry, RateLimitOverride,
};
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::Code;
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use envoy_types::pb::google::protobuf::UInt64Value;
use prost::Message;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use toolgate_ratelimit::Limiter;

/// A `redis-server` listening only on a Unix socket of its own. Tests run in parallel and
/// one restarts its server on the same address: with TCP ports picked by binding port 0,
/// another test could be handed that port in between and end up talking to (and losing)
/// the wrong server. A socket path per test cannot be handed to anyone else.
struct Redis {
    child: Child,
    socket: PathBuf,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// A socket path unique to this test process and call.
fn fresh_socket() -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("toolgate-redis-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{n}.sock"))
}

fn redis_on(socket: &Path) -> Redis {
    let _ = std::fs::remove_file(socket);
    let child = Command::new("redis-server")
        .args(["--port", "0", "--unixsocket"])
        .arg(socket)
        .args([
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server must be installed (Debian package redis-server)");
    // Owned at once, so the process is killed and reaped whatever happens next.
    let mut r = Redis {
        child,
        socket: socket.to_path_buf(),
    };
    for _ in 0..100 {
        if UnixStream::connect(socket).is_ok() {
            return r;
        }
        if let Ok(Some(status)) = r.child.try_wait() {
            panic!("redis-server exited at start: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("redis-server did not start on {}", socket.display());
}

fn redis() -> Redis {
    redis_on(&fresh_socket())
}

fn url(r: &Redis) -> String {
    format!("redis+unix://{}", r.socket.display())
}

fn descriptor(
    counter: &str,
    scope: &str,
    limit: u32,
    unit: i32,
    hits: Option<u64>,
) -> RateLimitDescriptor {
    RateLimitDescriptor {
        entries: vec![
            Entry {
                key: "counter".into(),
                value: counter.into(),
            },
            Entry {
                key: "scope".into(),
                value: scope.into(),
            },
        ],
        limit: Some(RateLimitOverride {
            requests_per_unit: limit,
            unit,
        }),
        hits_addend: hits.map(|value| UInt64Value { value }),
        ..Default::default()
    }
}

fn request(descriptors: Vec<RateLimitDescriptor>) -> RateLimitRequest {
    RateLimitRequest {
        domain: "toolgate".into(),
        descriptors,
        hits_addend: 0,
    }
}

#[tokio::test]
async fn counts_to_the_limit_per_descriptor() {
    let r = redis();
    let l = Limiter::connect(&url(&r)).await.unwrap();
    let req = request(vec![descriptor("cas", "grant:a", 3, 4, None)]);
    for left in [2, 1, 0] {
        let resp = l.decide(&req).await.unwrap();
        assert_eq!(resp.overall_code, Code::Ok as i32);
        assert_eq!(resp.statuses[0].limit_remaining, left);
        let reset = resp.statuses[0].duration_until_reset.unwrap().seconds;
        assert!((1..=86_400).contains(&reset));
    }
    let over = l.decide(&req).await.unwrap();
    assert_eq!(over.overall_code, Code::OverLimit as i32);
    assert_eq!(over.statuses[0].code, Code::OverLimit as i32);
    // Another scope value has its own count.
    let other = l
        .decide(&request(vec![descriptor("cas", "grant:b", 3, 4, None)]))
        .await
        .unwrap();
    assert_eq!(other.overall_code, Code::Ok as i32);
}

#[tokio::test]
async fn all_or_nothing_and_addends() {
    let r = redis();
    let l = Limiter::connect(&url(&r)).await.unwrap();
    // 8 of 10 spent on "money".
    let spend = request(vec![descriptor("money", "global", 10, 4, Some(8))]);
    assert_eq!(
        l.decide(&spend).await.unwrap().overall_code,
        Code::Ok as i32
    );
    // A request whose second descriptor would go over counts neither.
    let both = request(vec![
        descriptor("calls", "global", 5, 4, None),
        descriptor("money", "global", 10, 4, Some(3)),
    ]);
    let resp = l.decide(&both).await.unwrap();
    assert_eq!(resp.overall_code, Code::OverLimit as i32);
    assert_eq!(resp.statuses[0].code, Code::Ok as i32);
    assert_eq!(resp.statuses[1].code, Code::OverLimit as i32);
    assert_eq!(resp.statuses[0].limit_remaining, 5, "calls was not counted");
    // The request-wide addend applies where a descriptor has none.
    let mut wide = request(vec![descriptor("calls", "global", 5, 4, None)]);
    wide.hits_addend = 4;
    assert_eq!(
        l.decide(&wide).await.unwrap().statuses[0].limit_remaining,
        1
    );
    // No limit: not limited.
    let mut open = descriptor("free", "global", 0, 4, None);
    open.limit = None;
    assert_eq!(
        l.decide(&request(vec![open])).await.unwrap().overall_code,
        Code::Ok as i32
    );
}

#[tokio::test]
async fn descriptors_with_one_key_add_up() {
    let r = redis();
    let l = Limiter::connect(&url(&r)).await.unwrap();
    // Five calls of one batch against a limit of 3: over, and nothing counted.
    let five = request(vec![descriptor("batch", "grant:a", 3, 4, None); 5]);
    let resp = l.decide(&five).await.unwrap();
    assert_eq!(resp.overall_code, Code::OverLimit as i32);
    assert_eq!(resp.statuses[2].code, Code::Ok as i32);
    assert_eq!(resp.statuses[3].code, Code::OverLimit as i32);
    let three = request(vec![descriptor("batch", "grant:a", 3, 4, None); 3]);
    let resp = l.decide(&three).await.unwrap();
    assert_eq!(
        resp.overall_code,
        Code::Ok as i32,
        "the refused five counted nothing"
    );
    assert_eq!(resp.statuses[2].limit_remaining, 0);
    // Full: a descriptor adding nothing still needs room for one.
    let zero = request(vec![descriptor("batch", "grant:a", 3, 4, Some(0))]);
    assert_eq!(
        l.decide(&zero).await.unwrap().overall_code,
        Code::OverLimit as i32
    );
}

#[tokio::test]
async fn replicas_share_counts_and_survive_restarts() {
    let r = redis();
    let a = Limiter::connect(&url(&r)).await.unwrap();
    let b = Limiter::connect(&url(&r)).await.unwrap();
    let req = request(vec![descriptor("shared", "grant:x", 4, 4, None)]);
    let mut admitted = 0;
    for i in 0..10 {
        let l = if i % 2 == 0 { &a } else { &b };
        if l.decide(&req).await.unwrap().overall_code == Code::Ok as i32 {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 4, "two replicas, one count");
    // A restarted service (a new limiter) continues from Redis.
    drop(a);
    let c = Limiter::connect(&url(&r)).await.unwrap();
    assert_eq!(
        c.decide(&req).await.unwrap().overall_code,
        Code::OverLimit as i32
    );
}

#[tokio::test]
async fn redis_down_is_an_error_then_recovers() {
    let socket = fresh_socket();
    let r = redis_on(&socket);
    let l = Limiter::connect(&url(&r)).await.unwrap();
    let req = request(vec![descriptor("c", "global", 100, 2, None)]);
    assert!(l.decide(&req).await.is_ok());
    drop(r);
    let err = l.decide(&req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable);
    let _r2 = redis_on(&socket);
    let mut recovered = false;
    for _ in 0..50 {
        if l.decide(&req).await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the connection manager reconnects");
}

#[tokio::test]
async fn speaks_the_same_wire_format_as_the_filter() {
    use toolgate_engine::rls;
    // What the filter sends decodes as the protocol's request...
    let bytes = rls::encode_request(
        "mcp",
        &[rls::Descriptor {
            entries: vec![
                ("counter".into(), "cache_cas_rate".into()),
                ("scope".into(), "grant:0011".into()),
            ],
            requests_per_unit: 30,
            unit: 2,
            hits_addend: 2,
        }],
    );
    let req = RateLimitRequest::decode(bytes.as_slice()).unwrap();
    assert_eq!(req.domain, "mcp");
    assert_eq!(req.hits_addend, 2);
    let d = &req.descriptors[0];
    assert_eq!(
        (d.entries[0].key.as_str(), d.entries[0].value.as_str()),
        ("counter", "cache_cas_rate")
    );
    assert_eq!(
        d.limit.as_ref().map(|l| (l.requests_per_unit, l.unit)),
        Some((30, 2))
    );
    assert_eq!(d.hits_addend.as_ref().map(|h| h.value), Some(2));
    // ...and what the service answers decodes in the filter.
    let r = redis();
    let l = Limiter::connect(&url(&r)).await.unwrap();
    let resp: RateLimitResponse = l.decide(&req).await.unwrap();
    let ours = rls::decode_response(&resp.encode_to_vec()).unwrap();
    assert_eq!(ours.overall, rls::Code::Ok);
    assert_eq!(ours.statuses[0].remaining, 28);
    assert!(ours.statuses[0]
        .reset_secs
        .is_some_and(|s| (1..=60).contains(&s)));
}

#[tokio::test]
async fn refuses_malformed_requests() {
    let r = redis();
    let l = Limiter::connect(&url(&r)).await.unwrap();
    assert_eq!(
        l.decide(&request(vec![])).await.unwrap_err().code(),
        tonic::Code::InvalidArgument
    );
    let many = request(
        (0..65)
            .map(|i| descriptor(&i.to_string(), "g", 1, 1, None))
            .collect(),
    );
    assert_eq!(
        l.decide(&many).await.unwrap_err().code(),
        tonic::Code::InvalidArgument
    );
    let bad_unit = request(vec![descriptor("c", "g", 1, 6, None)]);
    assert_eq!(
        l.decide(&bad_unit).await.unwrap_err().code(),
        tonic::Code::InvalidArgument
    );
}
