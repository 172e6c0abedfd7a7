# The ecskube image: one static binary (musl; rustls, so no OpenSSL and no
# libc at run time) on an empty base, with CA certificates, as a numeric
# non-root user. Two ways to the same final image, from the same sources:
#
#   release (the default target): builds the binary in the Rust image.
#       docker build -t ecskube .
#       buildah bud --target release -t ecskube .
#   release-local: copies a binary built on the host by `make image`
#       (cargo build --target x86_64-unknown-linux-musl, staged in
#       target/image/), for machines that cannot pull the Rust image.
#       make image    # buildah bud --target release-local ...
#
# release-local comes first: a builder that skips unused stages never
# needs the Rust image for it.

ARG VERSION=0.1.0
ARG REVISION=unknown

FROM scratch AS runtime
ARG VERSION
ARG REVISION
LABEL org.opencontainers.image.title="ecskube" \
      org.opencontainers.image.description="Run AWS ECS task and service definitions on Kubernetes: admission webhook, controller and CLI" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/ecskube/ecskube"
# The nonroot user of distroless images; numeric, so no /etc/passwd is needed
# and Pod Security's runAsNonRoot can verify it.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/ecskube"]
CMD ["serve"]

FROM runtime AS release-local
COPY target/image/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY target/image/ecskube /usr/local/bin/ecskube

FROM rust:1.95-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl \
    && apt-get update && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY tools tools
COPY examples examples
COPY benches benches
COPY webhook-config webhook-config
ENV CC_x86_64_unknown_linux_musl=musl-gcc
RUN cargo build --release --locked --target x86_64-unknown-linux-musl --bin ecskube \
    && strip target/x86_64-unknown-linux-musl/release/ecskube

FROM runtime AS release
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /src/target/x86_64-unknown-linux-musl/release/ecskube /usr/local/bin/ecskube
