# syntax=docker/dockerfile:1
# Multi-stage build of the raygate binary.
#   docker build -t raygate:dev .
#
# One image for every mode: `raygate serve` (the default CMD), `raygate autoscale run`, and the
# autoscaler container KubeRay injects into the head Pod (`raygate autoscale sidecar`):
#   * KubeRay >= 1.7: autoscalerOptions.command ["/usr/local/bin/raygate"], args ["autoscale","sidecar"];
#   * KubeRay <  1.7: runs `/bin/bash -c -- "ray kuberay-autoscaler --cluster-name ... --cluster-namespace ..."`
#     (-lc with ENABLE_LOGIN_SHELL): /bin/bash, and `ray` -> raygate in /usr/local/bin (a login shell
#     resets PATH to /usr/local/bin:/usr/bin:/bin).
# So the runtime base is Debian slim (bash, glibc), not distroless.
#
# The build stage is replayed without Docker by scripts/dockerfile-replay.sh (scripts/test.sh, so CI): keep its
# instructions to FROM / WORKDIR / COPY <repo paths> <dest> / RUN with paths relative to WORKDIR,
# and put what the runtime stage takes under `out/`. CI replays the RUN steps in the dev profile,
# with `--release` dropped and `target/release/` read as `target/debug/` (docs/ci.md): name the
# profile only in those two ways.
#
# Base images pinned by digest: the multi-arch index digests of rust:1.95-bookworm and
# debian:bookworm-slim as of late September 2026. Not pulled or verified against the registry here
# (no registry access); cross-checked against independent public files that pin or record the
# same tag -> digest pairs (docs/hardening.md, "Base images"). Renew both together, e.g. with
# `docker buildx imagetools inspect rust:1.95-bookworm`.

FROM rust:1.95-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1 AS build
WORKDIR /src
# Dependencies first, for layer caching: the manifest, the build script and its inputs (the GCS
# protos, docs/rules for `raygate explain`), and a stub for every target Cargo.toml declares
# (cargo refuses a manifest whose [[bench]] files are missing). Outside a git checkout build.rs
# records the commit as `unknown`.
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
COPY docs/rules ./docs/rules
RUN mkdir -p src benches \
 && echo 'fn main() {}' > src/main.rs \
 && : > src/lib.rs \
 && for b in $(sed -n '/^\[\[bench\]\]/,/^name/s/^name *= *"\(.*\)"/\1/p' Cargo.toml); do echo 'fn main() {}' > "benches/$b.rs"; done \
 && cargo build --release --locked --bin raygate \
 && rm -rf src benches
# Everything the crate reads at compile time: sources, benches (targets of the manifest), the
# embedded JSON schemas (src/schema.rs) and scripts/ray_loopback.py (src/gcs/local.rs).
COPY src ./src
COPY benches ./benches
COPY schemas ./schemas
COPY scripts/ray_loopback.py ./scripts/ray_loopback.py
# Make sure cargo rebuilds the crate itself, not the cached stub.
RUN touch src/main.rs src/lib.rs build.rs \
 && cargo build --release --locked --bin raygate \
 && rm -rf out && mkdir -p out/usr/local/bin \
 && cp target/release/raygate out/usr/local/bin/raygate \
 && ln -s raygate out/usr/local/bin/ray \
 && out/usr/local/bin/raygate --version

# glibc + bash runtime (the binary links libc, libm, libgcc_s only).
FROM debian:bookworm-slim@sha256:3783cc01769c7b2b1b83a5c5ad96c815348e28ed7da68e2e3687004faa906251
COPY --from=build /src/out/ /
USER 65532:65532
EXPOSE 9443 8080
ENTRYPOINT ["/usr/local/bin/raygate"]
CMD ["serve"]
