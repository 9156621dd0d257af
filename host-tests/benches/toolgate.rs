//! What Toolgate costs per request, through this host and natively.
//!
//! `cargo bench -p host-tests` prints one table: the median time per request (or per
//! decision) and ratios to baselines measured in the same run: the probe module doing
//! nothing but buffering the same body through the same host (what any body-inspecting
//! filter pays for the host and the buffering), and the engine alone deciding the same
//! 1 KB call natively (what the decision costs without wasm and a host).
//!
//! Run as a test (`cargo test --benches`, no `--bench` flag) every case runs once.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use host_tests::workload::{
    call_body, mcp, policy_with_tools, probe_request, sized_call, sized_call_to, start_probe,
    start_toolgate, ONE_LIMIT, T0, TEN_CONDITIONS, TEN_CONDITION_ARGS,
};
use host_tests::{Envoy, Request};
use toolgate_engine::json::Validator;
use toolgate_engine::ratelimit::{ManualClock, MemoryStore};
use toolgate_engine::{Engine, Head, NoAttributes};

const SEED: &str = r#"{"version":"1","default":"deny","tools":{"cache_cas":{"limits":[{"counter":"cache_cas_rate","window":"minute","max":30,"scope":"grant"}]}}}"#;

/// How long to sample each case.
const SAMPLE_TIME: Duration = Duration::from_millis(800);
const SAMPLES: usize = 21;

#[derive(Clone, Copy)]
struct Stats {
    median: Duration,
    low: Duration,
    high: Duration,
}

/// Runs `f` repeatedly: warm-up, then `SAMPLES` samples of equal iteration counts; the
/// median, and the fastest and slowest sample, per iteration.
fn measure(quick: bool, mut f: impl FnMut()) -> Stats {
    if quick {
        let t = Instant::now();
        f();
        let e = t.elapsed();
        return Stats {
            median: e,
            low: e,
            high: e,
        };
    }
    let warm = Instant::now();
    let mut n = 0u32;
    while warm.elapsed() < SAMPLE_TIME / 4 || n < 3 {
        f();
        n += 1;
    }
    let per = warm.elapsed() / n;
    let iters = ((SAMPLE_TIME.as_nanos() / SAMPLES as u128) / per.as_nanos().max(1)).max(1) as u32;
    let mut samples: Vec<Duration> = (0..SAMPLES)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed() / iters
        })
        .collect();
    samples.sort();
    Stats {
        median: samples[SAMPLES / 2],
        low: samples[0],
        high: samples[SAMPLES - 1],
    }
}

fn batch_of(n: usize) -> String {
    let calls: Vec<String> = (0..n)
        .map(|i| {
            call_body("cache_cas", &format!(r#"{{"key":"k{i}"}}"#))
                .replace("\"id\":1", &format!("\"id\":{i}"))
        })
        .collect();
    format!("[{}]", calls.join(","))
}

struct Host {
    envoy: Envoy,
}

impl Host {
    fn toolgate(config: &str) -> Host {
        let envoy = start_toolgate(config).unwrap_or_else(|e| panic!("{e}"));
        Host { envoy }
    }

    fn probe() -> Host {
        Host {
            envoy: start_probe().unwrap(),
        }
    }

    /// Sends `request` once and checks it had the expected fate; returns the time the
    /// worker spent inside the module's callbacks.
    fn send(&self, request: &Request, forwarded: bool) -> Duration {
        let ex = self.envoy.worker(0).send(request.clone());
        assert_eq!(
            ex.is_forwarded(),
            forwarded,
            "{:?} {}",
            ex.outcome,
            ex.body_text()
        );
        ex.module_time
    }

    /// The median time inside the module's callbacks over `n` requests.
    fn module_time(&self, request: &Request, n: usize) -> Duration {
        let mut times: Vec<Duration> = (0..n).map(|_| self.send(request, true)).collect();
        times.sort();
        times[times.len() / 2]
    }
}

/// Rounds of the time inside the module's callbacks, `host` and the probe alternating so
/// the machine's drift falls on both: the median of `host`'s round medians, and the
/// median, lowest and highest of its per-round excess over the probe.
fn inside_over_probe(
    host: &Host,
    request: &Request,
    probe: &Host,
    probe_request: &Request,
    quick: bool,
) -> (Duration, Stats) {
    let (rounds, n) = if quick { (1, 1) } else { (21, 300) };
    host.module_time(request, n);
    probe.module_time(probe_request, n);
    let mut own = Vec::new();
    let mut over = Vec::new();
    for _ in 0..rounds {
        let p = probe.module_time(probe_request, n);
        let h = host.module_time(request, n);
        own.push(h);
        over.push(h.saturating_sub(p));
    }
    own.sort();
    over.sort();
    let stats = Stats {
        median: over[over.len() / 2],
        low: over[0],
        high: over[over.len() - 1],
    };
    (own[own.len() / 2], stats)
}

struct Engined {
    engine: Engine,
    store: MemoryStore,
    clock: ManualClock,
    validator: Validator,
}

impl Engined {
    fn new(config: &str) -> Engined {
        let config = toolgate_engine::config::load(config.as_bytes()).unwrap();
        let store = MemoryStore::new();
        let engine = Engine::new(config, "bench", &store, [7; 16]).unwrap();
        Engined {
            engine,
            store,
            clock: ManualClock::at_secs(T0),
            validator: Validator::new(),
        }
    }

    /// The head and the body decision, as the filter does per request.
    fn decide(&mut self, body: &[u8]) -> bool {
        let headers: [(&[u8], &[u8]); 2] = [
            (b"content-type", b"application/json"),
            (b"authorization", b"Bearer bench"),
        ];
        match self
            .engine
            .inspect_head(b"POST", &headers, true, &NoAttributes)
        {
            Head::Inspect(info) => {
                let o =
                    self.engine
                        .decide(&info, body, &self.store, &self.clock, &mut self.validator);
                matches!(o.verdict, toolgate_engine::outcome::Verdict::Forward(_))
            }
            other => panic!("{other:?}"),
        }
    }
}

struct Row {
    group: &'static str,
    name: String,
    stats: Stats,
    /// The baseline row's name this one is compared with.
    baseline: Option<String>,
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let mut rows: Vec<Row> = Vec::new();
    let mut run =
        |group: &'static str, name: String, baseline: Option<String>, f: &mut dyn FnMut()| {
            if filter.as_deref().is_some_and(|f| !name.contains(f)) {
                return;
            }
            let stats = measure(quick, f);
            eprintln!(
                "{name:<48} {:>12.2?}  [{:.2?} .. {:.2?}]",
                stats.median, stats.low, stats.high
            );
            rows.push(Row {
                group,
                name,
                stats,
                baseline,
            });
        };

    // Small bodies first: once large bodies have gone through, the process's allocator
    // makes every later request measurably slower (seen: +40 µs), so each large body is
    // measured last, right after its own probe baseline.
    let probe = Host::probe();
    let probe_run = |size: usize| {
        let body = if size == 0 {
            call_body("cache_cas", "{}")
        } else {
            sized_call(size)
        };
        probe_request(&body)
    };
    let mut native = Engined::new(ONE_LIMIT);
    let one_kb = sized_call(1024);
    run(
        "baseline",
        "engine alone: allowed 1 KB call".into(),
        None,
        &mut || {
            assert!(native.decide(one_kb.as_bytes()));
        },
    );
    for (label, size) in [("small", 0), ("1 KB", 1024)] {
        let request = probe_run(size);
        run(
            "baseline",
            format!("probe buffering: {label} body"),
            None,
            &mut || {
                probe.send(&request, true);
            },
        );
    }
    let small = || Some("probe buffering: small body".to_string());

    // Per request through the host.
    let seed = Host::toolgate(SEED);
    let denied = mcp(&call_body("cache_delete", r#"{"key":"k"}"#));
    run("request", "denied call".into(), small(), &mut || {
        seed.send(&denied, false);
    });
    let limited = Host::toolgate(ONE_LIMIT);
    let allowed = mcp(&call_body("cache_cas", r#"{"key":"k"}"#));
    run(
        "request",
        "allowed call, one limit".into(),
        small(),
        &mut || {
            limited.send(&allowed, true);
        },
    );
    let kb = mcp(&one_kb);
    run(
        "request",
        "allowed 1 KB tools/call".into(),
        Some("probe buffering: 1 KB body".into()),
        &mut || {
            limited.send(&kb, true);
        },
    );
    let batch = mcp(&batch_of(10));
    run(
        "request",
        "batch of 10 allowed calls".into(),
        small(),
        &mut || {
            limited.send(&batch, true);
        },
    );

    // Decision cost as the policy grows.
    for n in [1, 100, 1000] {
        let host = Host::toolgate(&policy_with_tools(n));
        let request = mcp(&call_body(&format!("tool_{}", n - 1), "{}"));
        run(
            "policy",
            format!("{n} tools, call the last"),
            small(),
            &mut || {
                host.send(&request, true);
            },
        );
    }
    let host = Host::toolgate(TEN_CONDITIONS);
    let request = mcp(&call_body("cond", TEN_CONDITION_ARGS));
    run(
        "policy",
        "10 conditions on the tool".into(),
        small(),
        &mut || {
            host.send(&request, true);
        },
    );

    // The engine alone for the same growth.
    for n in [1, 100, 1000] {
        let mut e = Engined::new(&policy_with_tools(n));
        let body = call_body(&format!("tool_{}", n - 1), "{}");
        run(
            "engine",
            format!("engine alone: {n} tools"),
            None,
            &mut || assert!(e.decide(body.as_bytes())),
        );
    }
    let mut e = Engined::new(TEN_CONDITIONS);
    let body = call_body("cond", TEN_CONDITION_ARGS);
    run(
        "engine",
        "engine alone: 10 conditions".into(),
        None,
        &mut || assert!(e.decide(body.as_bytes())),
    );

    // Decision cost as the body grows, each size after its probe baseline.
    for (label, size) in [
        ("16 KB", 16 << 10),
        ("64 KB", 64 << 10),
        ("256 KB", 256 << 10),
        ("1 MiB", 1 << 20),
    ] {
        let base = format!("probe buffering: {label} body");
        let request = probe_run(size);
        run("body", base.clone(), None, &mut || {
            probe.send(&request, true);
        });
        let request = mcp(&sized_call(size));
        run(
            "body",
            format!("allowed {label} tools/call"),
            Some(base),
            &mut || {
                limited.send(&request, true);
            },
        );
        let body = sized_call(size);
        run(
            "body",
            format!("engine alone: {label} body"),
            None,
            &mut || assert!(native.decide(body.as_bytes())),
        );
    }

    // The decision through the host, timed inside the module's callbacks: the worker's
    // own work (threads, channels, the fake upstream) is left out, so a few microseconds
    // are resolved where whole exchanges vary by tens.
    let probe_kb = probe_run(1024);
    let mut inside: Vec<(String, (Duration, Stats))> = Vec::new();
    inside.push((
        "Toolgate: allowed 1 KB tools/call, one limit".into(),
        inside_over_probe(&limited, &kb, &probe, &probe_kb, quick),
    ));
    for n in [1, 100, 1000] {
        let host = Host::toolgate(&policy_with_tools(n));
        let request = mcp(&sized_call_to(&format!("tool_{}", n - 1), 1024));
        inside.push((
            format!("Toolgate: allowed 1 KB call, {n} tools, call the last"),
            inside_over_probe(&host, &request, &probe, &probe_kb, quick),
        ));
    }
    // Argument conditions, over the probe buffering a body of the same size.
    let host = Host::toolgate(TEN_CONDITIONS);
    let body = call_body("cond", TEN_CONDITION_ARGS);
    inside.push((
        format!(
            "Toolgate: call meeting ten argument conditions ({} bytes)",
            body.len()
        ),
        inside_over_probe(&host, &mcp(&body), &probe, &probe_run(body.len()), quick),
    ));

    if quick {
        println!(
            "{} benchmarks ran once (pass --bench to measure)",
            rows.len()
        );
        return;
    }
    let engine_1kb = rows
        .iter()
        .find(|r| r.name == "engine alone: allowed 1 KB call")
        .map(|r| r.stats.median);
    println!();
    println!(
        "| group | case | median | spread | vs probe (same body) | vs engine alone (1 KB call) |"
    );
    println!("|---|---|---:|---:|---:|---:|");
    for r in &rows {
        let base = r
            .baseline
            .as_ref()
            .and_then(|b| rows.iter().find(|x| &x.name == b))
            .map(|b| {
                format!(
                    "{:.2}× ({:.2?})",
                    ratio(r.stats.median, b.stats.median),
                    b.stats.median
                )
            })
            .unwrap_or_else(|| "-".into());
        let engine = engine_1kb
            .map(|e| format!("{:.1}×", ratio(r.stats.median, e)))
            .unwrap_or_else(|| "-".into());
        println!(
            "| {} | {} | {:.2?} | {:.2?}..{:.2?} | {base} | {engine} |",
            r.group, r.name, r.stats.median, r.stats.low, r.stats.high
        );
    }
    print_inside(&inside);
}

fn print_inside(inside: &[(String, (Duration, Stats))]) {
    println!();
    println!("Time inside the module's callbacks per request, 21 rounds of 300 requests alternating with the probe buffering the same 1 KB body:");
    println!();
    println!("| case | inside the module | over the probe: the decision through the host (lowest..highest round) |");
    println!("|---|---:|---:|");
    for (name, (own, over)) in inside {
        println!(
            "| {name} | {own:.2?} | {:.2?} ({:.2?}..{:.2?}) |",
            over.median, over.low, over.high
        );
    }
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-12)
}
