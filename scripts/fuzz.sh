#!/usr/bin/env bash
# Coverage-guided fuzzing of ecskube with cargo-fuzz (libFuzzer), fuzz/:
#   documents   bytes as a file `ecskube validate` reads -> validate -> defaults -> convert
#   intrinsics  the CloudFormation intrinsic functions evaluator
#   admission   bytes as an AdmissionReview body -> the webhook's validate and mutate answers
# (the properties each checks are in fuzz/src/<target>.rs).
#
#   scripts/fuzz.sh                 seed, then run every target FUZZ_SECONDS (300) each
#   scripts/fuzz.sh intrinsics      only the targets named
#   scripts/fuzz.sh --seed-only     only (re)write the seed corpora
#
# Environment: FUZZ_SECONDS (300) per target; FUZZ_SANITIZER (address; `none`
# is about twice as fast); FUZZ_JOBS (1: cargo build jobs, the machine is
# shared); ECSKUBE_CORPUS (../shared/ecs-corpus); FUZZ_ARGS (more libFuzzer
# flags). Needs a nightly toolchain and jq; python3 with PyYAML adds the YAML
# samples and the CloudFormation corpus with its tests/cfn-params values.
#
# Corpora grow in fuzz/corpus/<target>/ (seeds are rewritten on each run,
# what libFuzzer found is kept); crashes go to fuzz/artifacts/<target>/.
# Exit status: 0 when no target found a crash, timeout or OOM; 1 otherwise;
# 2 when the setup failed.
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
fuzz="$repo/fuzz"
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_BUILD_JOBS="${FUZZ_JOBS:-1}"
FUZZ_SECONDS="${FUZZ_SECONDS:-300}"
FUZZ_SANITIZER="${FUZZ_SANITIZER:-address}"
CORPUS_SRC="${ECSKUBE_CORPUS:-$repo/../shared/ecs-corpus}"
ALL_TARGETS=(documents intrinsics admission)

die() { echo "fuzz: $*" >&2; exit 2; }

seed_only=false
targets=()
for a in "$@"; do
  case "$a" in
    --seed-only) seed_only=true ;;
    documents|intrinsics|admission) targets+=("$a") ;;
    *) die "unknown argument $a (targets: ${ALL_TARGETS[*]}, or --seed-only)" ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")

command -v jq >/dev/null || die "jq is needed (apt-get install jq)"
rustup toolchain list | grep -q '^nightly' || die "a nightly toolchain is needed (rustup toolchain install nightly)"
if ! cargo +nightly fuzz --help >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked || die "could not install cargo-fuzz"
fi

# ---------------------------------------------------------------------------
# Seed corpora (generated, not committed: fuzz/.gitignore).
seed() {
  local dir
  for t in "${ALL_TARGETS[@]}"; do
    mkdir -p "$fuzz/corpus/$t"
    rm -f "$fuzz/corpus/$t"/seed-*
  done
  local docs="$fuzz/corpus/documents" intr="$fuzz/corpus/intrinsics" adm="$fuzz/corpus/admission"
  local work
  work="$(mktemp -d)"
  # ECSDeployments as JSON, for the intrinsics and admission seeds.
  mkdir -p "$work/deployments"

  # documents: every file as `ecskube validate` would read it.
  for f in "$repo"/samples/*.json "$repo"/samples/*.yaml "$repo"/samples/task-from-configmap/*; do
    cp "$f" "$docs/seed-sample-$(basename "$f")"
  done
  if [ -d "$CORPUS_SRC" ]; then
    for dir in taskdefs services cfn; do
      for f in "$CORPUS_SRC/$dir"/*.json; do
        [ -e "$f" ] && cp "$f" "$docs/seed-$dir-$(basename "$f")"
      done
    done
  else
    echo "fuzz: no ECS corpus at $CORPUS_SRC (set ECSKUBE_CORPUS); seeding from samples/ only" >&2
  fi
  for f in "$repo"/samples/*.json; do
    [ "$(jq -r '.kind // ""' "$f")" = ECSDeployment ] && jq -c . "$f" > "$work/deployments/$(basename "$f")"
  done

  # YAML inputs and the CloudFormation corpus with its values (python3 + PyYAML).
  if python3 -c 'import yaml' 2>/dev/null; then
    python3 - "$repo" "$CORPUS_SRC" "$docs" "$work/deployments" <<'PY'
import json, os, sys, yaml
repo, corpus, docs, deployments = sys.argv[1:5]
# YAML ECSDeployments of samples/ as JSON.
for rel in ("samples/cloudformation.yaml", "samples/task-from-configmap/ecsdeployment.yaml"):
    for i, d in enumerate(yaml.safe_load_all(open(os.path.join(repo, rel)))):
        if isinstance(d, dict) and d.get("kind") == "ECSDeployment":
            name = rel.replace("/", "-").replace(".yaml", "")
            json.dump(d, open(os.path.join(deployments, f"{name}-{i}.json"), "w"), separators=(",", ":"))
# Each CloudFormation pair of the corpus as an ECSDeployment carrying its
# tests/cfn-params values, as JSON and as YAML.
cfn, params = os.path.join(corpus, "cfn"), os.path.join(repo, "tests", "cfn-params")
if os.path.isdir(cfn):
    for f in sorted(os.listdir(cfn)):
        if not f.endswith(".json"):
            continue
        stem = f[:-5]
        pair = json.load(open(os.path.join(cfn, f)))
        p = os.path.join(params, stem + ".yaml")
        values = (yaml.safe_load(open(p)) or {}) if os.path.exists(p) else {}
        spec = {k: v for k, v in pair.items() if k in ("Task", "Service")}
        for section in ("Parameters", "Conditions", "Mappings"):
            if section in values:
                spec[section] = values[section]
        name = "cfn-" + stem[:2]
        d = {"apiVersion": "ecskube.ecskube/v1alpha1", "kind": "ECSDeployment",
             "metadata": {"name": name, "namespace": "default"}, "spec": spec}
        json.dump(d, open(os.path.join(deployments, f"cfn-{stem}.json"), "w"), separators=(",", ":"))
        json.dump(d, open(os.path.join(docs, f"seed-deployment-cfn-{stem}.json"), "w"), indent=1)
        with open(os.path.join(docs, f"seed-deployment-cfn-{stem}.yaml"), "w") as out:
            yaml.safe_dump(d, out, sort_keys=False)
PY
  else
    echo "fuzz: python3 with PyYAML not found; skipping the YAML samples and the CloudFormation values" >&2
  fi

  # intrinsics: ECSDeployment specs (JSON mode), the bare corpus pairs, and
  # a few byte strings for the generator mode (anything not starting with `{`).
  for f in "$work"/deployments/*.json; do
    jq -c '.spec' "$f" > "$intr/seed-spec-$(basename "$f")"
  done
  if [ -d "$CORPUS_SRC/cfn" ]; then
    for f in "$CORPUS_SRC"/cfn/*.json; do
      jq -c '{Task, Service}' "$f" > "$intr/seed-pair-$(basename "$f")"
    done
  fi
  for i in $(seq 1 16); do
    head -c $((64 * i)) /dev/urandom | tr '{' '|' > "$intr/seed-gen-$i"
  done

  # admission: each ECSDeployment wrapped in an AdmissionReview (as
  # bench/webhook-load.sh does), for CREATE and for an UPDATE of it.
  for f in "$work"/deployments/*.json; do
    local b
    b="$(basename "$f" .json)"
    jq -c --arg op CREATE '{
      apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview",
      request: {uid: "fuzz", kind: {group: "ecskube.ecskube", version: "v1alpha1", kind: "ECSDeployment"},
                resource: {group: "ecskube.ecskube", version: "v1alpha1", resource: "ecsdeployments"},
                name: (.metadata.name // "fuzz"), namespace: (.metadata.namespace // "default"), operation: $op,
                userInfo: {username: "fuzz"}, object: ., dryRun: false}}' "$f" > "$adm/seed-create-$b.json"
    jq -c '{
      apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview",
      request: {uid: "fuzz", kind: {group: "ecskube.ecskube", version: "v1alpha1", kind: "ECSDeployment"},
                resource: {group: "ecskube.ecskube", version: "v1alpha1", resource: "ecsdeployments"},
                name: (.metadata.name // "fuzz"), namespace: (.metadata.namespace // "default"), operation: "UPDATE",
                userInfo: {username: "fuzz"}, object: ., oldObject: (.spec.Service = {schedulingStrategy: "DAEMON"}),
                dryRun: false}}' "$f" > "$adm/seed-update-$b.json"
  done
  rm -rf "$work"

  # The dictionary: base tokens plus every member name and enum value of the ECS models.
  mkdir -p "$fuzz/target"
  {
    cat "$fuzz/dicts/base.dict"
    echo "# from src/ecs/schema/generated.rs"
    grep -o 'Member { name: "[^"]*"' "$repo/src/ecs/schema/generated.rs" | sed 's/^Member { name: //'
    grep -o 'enums: &\[[^]]*\]' "$repo/src/ecs/schema/generated.rs" | grep -o '"[^"]*"'
  } | awk '!seen[$0]++' > "$fuzz/target/fuzz.dict"

  for t in "${ALL_TARGETS[@]}"; do
    echo "fuzz: $t: $(ls "$fuzz/corpus/$t" | grep -c '^seed-') seeds, $(ls "$fuzz/corpus/$t" | wc -l) inputs in fuzz/corpus/$t"
  done
}

seed
$seed_only && exit 0

# ---------------------------------------------------------------------------
# Build once, then run each target.
(cd "$fuzz" && cargo +nightly fuzz build -s "$FUZZ_SANITIZER") || die "build failed"

failed=()
summary=()
for t in "${targets[@]}"; do
  mkdir -p "$fuzz/artifacts/$t"
  before="$(ls "$fuzz/artifacts/$t" | wc -l)"
  log="$fuzz/target/fuzz-$t.log"
  echo "fuzz: running $t for ${FUZZ_SECONDS}s (log: ${log#"$repo"/})"
  # shellcheck disable=SC2086
  (cd "$fuzz" && cargo +nightly fuzz run -s "$FUZZ_SANITIZER" "$t" "$fuzz/corpus/$t" -- \
    -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -dict="$fuzz/target/fuzz.dict" ${FUZZ_ARGS:-}) >"$log" 2>&1
  rc=$?
  after="$(ls "$fuzz/artifacts/$t" | wc -l)"
  # libFuzzer's last status line (`#N DONE cov: C ft: F corp: ...`, or the
  # last one before a crash) and the final stats.
  status="$(grep -E '^#[0-9]+' "$log" | tail -1)"
  cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status")"
  ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$status")"
  corp="$(sed -n 's/.* corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p' <<<"$status")"
  units="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  eps="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
  rss="$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)"
  line="$t: ${FUZZ_SECONDS}s, ${units:-?} executions, ${eps:-?} exec/s, cov: ${cov:-?} ft: ${ft:-?}, corpus ${corp:-?}, peak RSS ${rss:-?} MB"
  if [ "$rc" -ne 0 ] || [ "$after" -gt "$before" ]; then
    failed+=("$t")
    line="$line -- FAILED (exit $rc); new artifacts:"
    for a in $(ls -t "$fuzz/artifacts/$t" | head -$((after - before > 0 ? after - before : 1))); do
      line="$line fuzz/artifacts/$t/$a"
    done
    grep -m1 -E "panicked at|ERROR: libFuzzer|SUMMARY" "$log" >&2 || true
  fi
  echo "fuzz: $line"
  summary+=("$line")
done

echo
echo "fuzz: summary"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]} (reproduce: cd fuzz && cargo +nightly fuzz run <target> <artifact>;" \
    "minimize: cargo +nightly fuzz tmin <target> <artifact>)" >&2
  exit 1
fi
