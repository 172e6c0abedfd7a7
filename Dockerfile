# Build: docker build -t ecskube .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY tools tools
COPY examples examples
COPY benches benches
COPY webhook-config webhook-config
RUN cargo build --release --locked --bin ecskube

# Non-root, no shell: only the binary (rustls, no OpenSSL).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/ecskube /usr/local/bin/ecskube
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/ecskube"]
CMD ["serve"]
