//! `toolgate-ratelimit --listen 127.0.0.1:8081 --redis redis://127.0.0.1:6379`

use std::net::SocketAddr;
use std::process::ExitCode;
use toolgate_ratelimit::Limiter;

const HELP: &str = "\
toolgate-ratelimit: Envoy's rate limit service (ShouldRateLimit) with counts in Redis.

USAGE:
    toolgate-ratelimit [--listen ADDR] [--redis URL]

    --listen ADDR   gRPC address (default 127.0.0.1:8081)
    --redis URL     Redis (default redis://127.0.0.1:6379)

Stateless: run as many replicas as needed against one Redis.
";

fn parse() -> Result<(SocketAddr, String), String> {
    let mut listen = "127.0.0.1:8081".to_string();
    let mut redis = "redis://127.0.0.1:6379".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => listen = args.next().ok_or("--listen needs an address")?,
            "--redis" => redis = args.next().ok_or("--redis needs a URL")?,
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let addr = listen
        .parse()
        .map_err(|e| format!("--listen {listen:?}: {e}"))?;
    Ok((addr, redis))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (addr, redis) = match parse() {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("toolgate-ratelimit: {e}\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    let limiter = match Limiter::connect(&redis).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("toolgate-ratelimit: cannot reach {redis}: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!("toolgate-ratelimit: serving ShouldRateLimit on {addr}, counts in {redis}");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match tonic::transport::Server::builder()
        .add_service(limiter.into_service())
        .serve_with_shutdown(addr, shutdown)
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("toolgate-ratelimit: {e}");
            ExitCode::from(1)
        }
    }
}
