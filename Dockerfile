# syntax=docker/dockerfile:1.7
#
# The taksa node image: `docker build -t taksa:local .` at the repository root (BuildKit, the
# default builder of Docker 23 and later). deploy/compose.yaml builds it the same way.
#
#   docker run --rm taksa:local node --help
#   docker run -d -v taksa-data:/data -v "$PWD/genesis.json:/etc/taksa/genesis.json:ro" \
#     -p 127.0.0.1:8545:8545 -p 30333:30333 taksa:local \
#     node --genesis /etc/taksa/genesis.json --data-dir /data/chain --bootnode /ip4/<IP>/tcp/30333
#
# The first build compiles RocksDB's C++, libp2p and jsonrpsee: about 20 minutes on 2 cores.
# Later builds reuse the cargo registry and target folder kept in BuildKit cache mounts.

# The locked dependencies need rustc 1.89 or newer (the workspace's rust-version; uuid 1.29
# declares 1.89, the icu_* crates 1.88). 1.95 is what the project is built and tested with today.
ARG RUST_VERSION=1.95

############################################################################################
# Builder: the release binary, built the one way scripts/setup.sh builds it.
FROM rust:${RUST_VERSION}-bookworm AS builder

# RocksDB's Rust bindings are generated at build time with libclang (bindgen); its C++ is
# compiled with the image's g++.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends clang libclang-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# The cache mounts keep downloaded crates and compiled dependencies between builds; the target
# folder is a cache mount, so the binary is copied out of it in the same step.
RUN --mount=type=cache,id=taksa-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=taksa-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=taksa-target,target=/src/target,sharing=locked \
    cargo build --release --locked -p taksa-node --bin taksa \
 && install -D -m 0755 target/release/taksa /out/taksa

############################################################################################
# Runtime: the binary links only libc, libm, libgcc_s and libstdc++ (RocksDB's C++).
FROM debian:bookworm-slim AS runtime

# ca-certificates: for TLS to servers the binary talks to (an RPC endpoint over wss://, say; the
# PostgreSQL exporter has no TLS); libstdc++6 is in the slim image already and is named for clarity.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates libstdc++6 \
 && rm -rf /var/lib/apt/lists/*

# A fixed uid/gid, so volumes prepared elsewhere (deploy/compose.yaml's init service) match.
ARG TAKSA_UID=10001
ARG TAKSA_GID=10001
RUN groupadd --gid "${TAKSA_GID}" taksa \
 && useradd --no-log-init --uid "${TAKSA_UID}" --gid taksa --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin taksa \
 && mkdir -p /data /etc/taksa \
 && chown taksa:taksa /data \
 && chmod 0750 /data

COPY --from=builder /out/taksa /usr/local/bin/taksa

# The healthcheck: GET /health on the node's RPC port over bash's /dev/tcp, so the image needs
# no curl. The port is the one in TAKSA_RPC_ADDR (8545 when unset); the node must listen on
# 0.0.0.0 or 127.0.0.1 for the probe to reach it.
RUN <<'EOF'
set -eu
cat >/usr/local/bin/taksa-healthcheck <<'SCRIPT'
#!/bin/bash
# Exit 0 when the node's GET /health answers 200 within 3 s, else 1.
port="${TAKSA_RPC_ADDR##*:}"
port="${port:-8545}"
exec 3<>"/dev/tcp/127.0.0.1/${port}" || exit 1
printf 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
IFS= read -r -t 3 status <&3 || exit 1
case "$status" in
  "HTTP/1.1 200 "*) exit 0 ;;
  *) exit 1 ;;
esac
SCRIPT
chmod 0755 /usr/local/bin/taksa-healthcheck
EOF

# Every node listens on all of the container's addresses: JSON-RPC (with /health, /ready and
# /metrics) on 8545, p2p on 30333. Host names other than IP addresses and localhost must still
# be allowed with TAKSA_RPC_ALLOWED_HOSTS (deploy/compose.yaml sets each service's name).
ENV TAKSA_RPC_ADDR=0.0.0.0:8545 \
    TAKSA_P2P_ADDR=0.0.0.0:30333 \
    TAKSA_LOG=info \
    HOME=/data

USER taksa:taksa
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8545/tcp 30333/tcp

HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["/usr/local/bin/taksa-healthcheck"]

# SIGTERM stops the node cleanly (it flushes its data and exits); give it the time to:
# `docker stop --time 30`, or `stop_grace_period: 30s` in compose.
STOPSIGNAL SIGTERM
ENTRYPOINT ["taksa"]
CMD ["node", "--help"]
