# syntax=docker/dockerfile:1
# wsbroker, the standalone WebSocket/STOMP broker, in a small image (Debian slim, non-root).
#
#   docker build -t wsbroker .
#   docker run --rm -p 61614:61614 -p 61615:61615 --ulimit nofile=1048576:1048576 wsbroker
#
# WebSocket STOMP on ws://HOST:61614/ws (also SockJS and GET /metrics), plain-TCP STOMP on
# 61615 (not 61613, RabbitMQ's STOMP port). Arguments after the image name replace CMD, e.g.
# `docker run ... wsbroker --listen 0.0.0.0:61614 --relay rabbitmq:61613`; the health check
# probes /metrics on 61614. Raise the open-file limit (--ulimit) for more than ~1,000 clients.
# Checked without an engine by scripts/packaging-tests.sh (hadolint, stages, user, health check
# run against the built binary).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# --- build: the release binary (BuildKit caches the registry and target/ between builds)
FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin wsbroker \
    && install -D -m 0755 target/release/wsbroker /out/wsbroker \
    && strip --strip-debug /out/wsbroker

# --- runtime: the binary and its licences on Debian slim (glibc, bash for the health check)
FROM debian:${DEBIAN_RELEASE}-slim AS runtime
RUN groupadd --system --gid 10001 wsbroker \
    && useradd --system --uid 10001 --gid wsbroker --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin wsbroker
COPY --from=build /out/wsbroker /usr/local/bin/wsbroker
COPY LICENSE-MIT LICENSE-APACHE /usr/share/doc/wsbroker/
USER 10001:10001
ENV NO_COLOR=1
EXPOSE 61614 61615
STOPSIGNAL SIGTERM
# GET /metrics over HTTP on the WebSocket port; healthy on "HTTP/1.x 200".
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/61614 && printf 'GET /metrics HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q '^HTTP/1\\.[01] 200 '"]
ENTRYPOINT ["/usr/local/bin/wsbroker"]
CMD ["--listen", "0.0.0.0:61614", "--tcp-listen", "0.0.0.0:61615"]
