# syntax=docker/dockerfile:1
# The runtime guard, `gatehouse serve`, as a container image.
#
#   docker build -t gatehouse .
#   docker run -p 8080:8080 -v "$PWD/examples/conda-forge:/access:ro" -v gatehouse-data:/data gatehouse
#
# Stage 1 builds a static (musl) binary with cargo; stage 2 is Alpine with only what the guard
# runs besides itself: git (the ledger's history pages read the access repository's git log),
# CA certificates (GitHub's API) and busybox's wget for the health check. It runs as an
# unprivileged user; the SQLite database is on the volume /data (or give GATEHOUSE_DB a
# postgres:// URL for several replicas: deploy/compose.yaml); the access repository is mounted
# at /access, read-only.

FROM rust:1.95-alpine3.22 AS build
# A C compiler is in the image; ring and the bundled SQLite also need musl's headers.
# Alpine's repositories keep only the current build of a package, so a pinned version would stop
# resolving at its next security fix: the base image's tag (alpine3.22) pins the release branch.
# hadolint ignore=DL3018
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY . .
# Without the release profile's line tables (symbols stay): a linux-gnu build is 32 MB, not 142.
ENV CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_STRIP=debuginfo
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p gatehouse \
    && cp target/release/gatehouse /usr/local/bin/gatehouse

FROM alpine:3.22
# Unpinned within Alpine 3.22, as above: security fixes of git and the CA list arrive on rebuild.
# hadolint ignore=DL3018
RUN apk add --no-cache ca-certificates git \
    && adduser -D -H -u 10001 -s /sbin/nologin gatehouse \
    && mkdir /data \
    && chown gatehouse:gatehouse /data
COPY --from=build /usr/local/bin/gatehouse /usr/local/bin/gatehouse
# The mounted access repository belongs to another user than the guard's: tell git to read it.
ENV GATEHOUSE_DB=sqlite:///data/gatehouse.db \
    GIT_CONFIG_COUNT=1 \
    GIT_CONFIG_KEY_0=safe.directory \
    GIT_CONFIG_VALUE_0=/access
VOLUME ["/data"]
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["gatehouse"]
CMD ["serve", "/access", "--listen", "0.0.0.0:8080"]
