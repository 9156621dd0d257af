# The AWS Labs memcached MCP server (stdio) behind mcp-proxy (Streamable HTTP on :8000/mcp),
# pinned to the versions the end-to-end tests run (e2e/requirements/memcached.txt, proxy.txt).
# Not built by any script here; build and push it with your own tooling:
#   docker build -f deploy/docker/memcached-mcp.Dockerfile -t registry.example/toolgate/memcached-mcp:0.1.0 .
# The two tools live in separate virtual environments: the server needs mcp 2.x, mcp-proxy 1.x.
FROM python:3.12-slim
RUN python -m venv /opt/server && /opt/server/bin/pip install --no-cache-dir awslabs.memcached-mcp-server==1.1.1 \
 && python -m venv /opt/proxy && /opt/proxy/bin/pip install --no-cache-dir mcp-proxy==0.12.0
USER 65532:65532
EXPOSE 8000
# MEMCACHED_HOST and MEMCACHED_PORT come from the Deployment and are passed through to the server.
ENTRYPOINT ["/opt/proxy/bin/mcp-proxy", "--host", "0.0.0.0", "--port", "8000", "--pass-environment", "--", "/opt/server/bin/awslabs.memcached-mcp-server"]
