# syntax=docker/dockerfile:1
# Multi-stage build of the raygate binary; the runtime image is distroless (non-root, no shell).
#   docker build -t raygate:dev .

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, for layer caching.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
 && echo 'fn main() {}' > src/main.rs \
 && echo '' > src/lib.rs \
 && echo 'fn main() {}' > benches/webhook_load.rs \
 && cargo build --release --locked --bin raygate \
 && rm -rf src benches
COPY src ./src
COPY benches ./benches
# Make sure cargo rebuilds the crate itself, not the cached stub.
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --bin raygate \
 && cp target/release/raygate /raygate

# glibc runtime (ring and the binary link libc, libm, libgcc_s only).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /raygate /usr/local/bin/raygate
USER 65532:65532
EXPOSE 9443 8080
ENTRYPOINT ["/usr/local/bin/raygate"]
CMD ["serve"]
