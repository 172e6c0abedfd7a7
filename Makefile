# ecskube developer entry points. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: all build test tools fmt-check clippy msrv control-plane crds run bench bench-control-plane bench-webhook schema fuzz fuzz-adversarial image test-image

all: build

build:
	$(CARGO) build --release --bins

# Every check CI runs: formatting, lints, the minimum Rust version, all
# tests (unit, integration, end-to-end), then the image, built and checked.
test: tools control-plane crds fmt-check clippy msrv
	$(CARGO) test --all-targets
	$(MAKE) test-image

# The image (Dockerfile, stage release-local) with buildah: a static musl
# binary from cargo, FROM scratch. Installs buildah and musl-tools (Debian)
# and the musl target (rustup) when missing. IMAGE=... names it.
IMAGE ?= localhost/ecskube:dev
image:
	IMAGE=$(IMAGE) bash scripts/build-image.sh

# The built image from its own root filesystem: non-root, labels, and its
# binary's --version and validate (scripts/test-image.sh).
test-image: image
	IMAGE=$(IMAGE) bash scripts/test-image.sh

# The Rust components the checks need (rustup is how this machine's Rust is installed).
tools:
	rustup component add rustfmt clippy

# Cargo.toml's rust-version is the oldest toolchain that builds ecskube (the
# newest minimum among its dependencies: kube 5 and actix-web need 1.89).
MSRV := $(shell sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
msrv:
	rustup toolchain install $(MSRV) --profile minimal
	CARGO_TARGET_DIR=target/msrv $(CARGO) +$(MSRV) check --all-targets --locked

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

# The External Secrets Operator's CRDs (v0.16.2, from its Go module through
# the module proxy), cached outside the clone, for tests/integrations.rs.
crds:
	bash scripts/fetch-crds.sh

# Real Kubernetes binaries built from the Go module proxy, cached outside the clone.
control-plane:
	bash scripts/build-control-plane.sh

# A local cluster (etcd, apiserver, controller-manager, scheduler, kwok) with
# ecskube (webhook + controller) and the sample, until Ctrl-C. Prints
# `export KUBECONFIG=...`; MANIFESTS="a.yaml b.yaml" replaces the sample.
MANIFESTS ?= samples/ecsdeployment.json
run: control-plane
	$(CARGO) build --release --bins
	./target/release/ecskube-dev-cluster up --ecskube ./target/release/ecskube $(MANIFESTS)

bench:
	$(CARGO) bench --bench engine

# Against the local control plane: preflight latency, and ECSKUBE_BENCH_N
# (default 1000) ECSDeployments at once, beside kube-controller-manager.
bench-control-plane: control-plane
	$(CARGO) bench --bench control_plane

# Regenerate the ECS shape table from AWS's models (../shared/aws-models or $ECSKUBE_AWS_MODELS).
schema:
	$(CARGO) run --quiet --example gen_schema -- $${ECSKUBE_AWS_MODELS:-../shared/aws-models} > src/ecs/schema/generated.rs.tmp
	mv src/ecs/schema/generated.rs.tmp src/ecs/schema/generated.rs

# The webhook beside a Go baseline and the framework limit (bench/webhook-load.sh).
bench-webhook:
	bash bench/webhook-load.sh

# Coverage-guided fuzzing (cargo-fuzz on the nightly toolchain, installed by
# the script when missing): the documents, intrinsics and admission targets of
# fuzz/, seeded from ../shared/ecs-corpus and samples/, FUZZ_SECONDS each;
# prints executions/s and coverage, fails on any crash, hang or OOM
# (scripts/fuzz.sh). FUZZ_TARGETS="admission" runs only those.
FUZZ_SECONDS ?= 300
FUZZ_TARGETS ?=
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh $(FUZZ_TARGETS)

# The mutated-review fuzz test of tests/webhook.rs at length, release build:
# size-amplifying values included; every answer must come before the engine's deadline.
FUZZ_CASES ?= 20000
fuzz-adversarial:
	ECSKUBE_FUZZ_CASES=$(FUZZ_CASES) $(CARGO) test --release --test webhook mutated_reviews_never_panic_the_handler -- --nocapture
