# toolgate-ratelimit: the stateless rate limit service (Envoy's ShouldRateLimit over gRPC),
# counts in Redis. Not built by any script here:
#   docker build -f deploy/docker/ratelimit.Dockerfile -t registry.example/toolgate/ratelimit:0.1.0 .
FROM rust:1-slim AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p toolgate-ratelimit

FROM debian:stable-slim
COPY --from=build /src/target/release/toolgate-ratelimit /usr/local/bin/toolgate-ratelimit
USER 65532:65532
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/toolgate-ratelimit", "--listen", "0.0.0.0:8081"]
