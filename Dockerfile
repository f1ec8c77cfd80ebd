# agent-host: a small runtime image with the host binary, running as non-root.
#
#   docker build -t agent-host .
#   docker run --rm -p 8081:8081 -v $PWD/agents:/plugins:ro \
#       -e LIVEKIT_URL -e LIVEKIT_API_KEY -e LIVEKIT_API_SECRET \
#       agent-host --plugin /plugins/agent.wasm
#
# Plugins are mounted (or baked in with a derived image: COPY agent.wasm
# /plugins/), so a new agent version needs no new host image.
#
# A derived image can precompile its baked-in plugins, so pods start without
# compiling (README, "Ahead-of-time plugins"). The .cwasm is bound to this
# image's agent-host, to --memory-limit and to the CPU features of the
# machine that compiles it, so compile in the image itself, with the limit
# the pods run with, on the kind of node they run on (elsewhere it is
# refused at start with a line saying to recompile):
#
#   FROM agent-host
#   USER root
#   COPY agent.wasm /plugins/
#   RUN agent-host compile /plugins/agent.wasm -o /plugins/agent.cwasm
#   USER 10001
#   ENV AGENT_HOST_ALLOW_PRECOMPILED=1
#   CMD ["--plugin", "/plugins/agent.cwasm"]
#
# Only your own build's .cwasm belongs here: it is native code (SECURITY.md).

# --- build ------------------------------------------------------------------
FROM rust:1.95-bookworm AS build
WORKDIR /src
# rust-toolchain.toml pins the toolchain; rustup installs it here.
COPY . .
RUN cargo build --release --locked -p agent-host \
    && cp target/release/agent-host /agent-host
# LiveKit's client library for room I/O (pinned wheel, sha256-checked).
RUN apt-get update && apt-get install -y --no-install-recommends python3-pip \
    && /agent-host setup --dir /livekit-ffi

# --- runtime ----------------------------------------------------------------
FROM debian:bookworm-slim
# No OpenSSL needed (TLS is rustls); the CA roots are compiled in.
RUN useradd --system --uid 10001 --home-dir /var/lib/agent-host agent-host \
    && mkdir -p /var/cache/agent-host /plugins \
    && chown agent-host /var/cache/agent-host
COPY --from=build /agent-host /usr/local/bin/agent-host
# The library ships with its licence (Apache-2.0 plus WebRTC's notices).
COPY --from=build /livekit-ffi /usr/local/lib/livekit-ffi
USER 10001
# Compiled components are cached here; mount a volume to keep them across
# restarts (start-up then skips compilation).
ENV AGENT_HOST_CACHE_DIR=/var/cache/agent-host \
    AGENT_HOST_LOG_FORMAT=json \
    LIVEKIT_LIB_PATH=/usr/local/lib/livekit-ffi/liblivekit_ffi.so
EXPOSE 8081
# SIGTERM drains: running jobs finish (up to --drain-timeout), then exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["agent-host", "run"]
