# syntax=docker/dockerfile:1
#
# cxstream container image: build with `docker build -t cxstream .`
# (docker-compose.yml builds it as cxstream:local).

# ---- build --------------------------------------------------------------
FROM rust:1-bookworm AS builder

# librdkafka is compiled from source by rdkafka-sys: it needs a C toolchain,
# make, and the OpenSSL and zlib headers (found through pkg-config).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        build-essential make pkg-config libssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# The cache mounts keep the crate registry and compiled dependencies between
# builds; the binary is copied out of the (cached) target directory.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin cxstream \
 && install -m 0755 target/release/cxstream /usr/local/bin/cxstream

# ---- runtime ------------------------------------------------------------
FROM debian:bookworm-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 cxstream \
 && useradd --system --uid 10001 --gid cxstream --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin cxstream

COPY --from=builder /usr/local/bin/cxstream /usr/local/bin/cxstream
# The documented default configuration; mount your own over it.
COPY config/cxstream.toml /etc/cxstream/cxstream.toml

USER 10001:10001

# Prometheus metrics, /healthz and /readyz. The endpoint binds 127.0.0.1 by
# default: in a container pass `--metrics-listen 0.0.0.0:9464` (as
# docker-compose.yml does) to reach it from outside.
EXPOSE 9464

ENTRYPOINT ["cxstream"]
CMD ["--help"]
