//! The HTTP layer: actix-web over rustls for admission, plain HTTP for probes
//! and metrics. Handlers only decode, call the engine, and encode; every
//! malformed request gets a clear 4xx, never a panic or a hang.

use super::admission::{self, Evaluation, Rejudge, Review};
use super::metrics::Metrics;
use super::preflight::Preflight;
use super::sources;
use crate::diag::{Code, Diagnostic, Report};
use crate::offload::Offload;
use crate::policy::PolicyStore;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use futures::StreamExt;
use kube::core::admission::{AdmissionRequest, AdmissionResponse};
use kube::core::DynamicObject;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The API server's own request size limit.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

pub struct State {
    pub policy: PolicyStore,
    /// What the cluster runs that ECS fields map to (API discovery).
    pub integrations: crate::integrations::IntegrationsStore,
    /// Present when running in a cluster: ConfigMaps for TaskFrom, and preflight.
    pub client: Option<kube::Client>,
    pub preflight: Option<Preflight>,
    pub metrics: Arc<Metrics>,
    /// True once the webhook can answer (or, controller only, its caches synced).
    pub ready: watch::Receiver<bool>,
    /// The process's background tasks: one that died fails /healthz.
    pub health: crate::supervisor::Health,
    /// How long a client may take to send its body.
    pub body_timeout: Duration,
    /// Where the engine runs: off the HTTP workers, bounded, with a deadline.
    pub engine: Offload,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/validate", web::post().to(validate))
        .route("/mutate", web::post().to(mutate))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

/// Probe and metrics routes only, for the plain-HTTP port.
pub fn probe_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

async fn healthz(state: web::Data<State>) -> HttpResponse {
    let failures = state.health.failures();
    if failures.is_empty() {
        return HttpResponse::Ok().body("ok");
    }
    let lines: Vec<String> = failures.iter().map(|(task, why)| format!("{task}: {why}")).collect();
    HttpResponse::InternalServerError().body(lines.join("\n"))
}

async fn readyz(state: web::Data<State>) -> HttpResponse {
    if *state.ready.borrow() {
        HttpResponse::Ok().body("ok")
    } else {
        HttpResponse::ServiceUnavailable().body("not ready")
    }
}

async fn metrics(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok().content_type(Metrics::CONTENT_TYPE).body(state.metrics.render())
}

/// Why a request body was refused, as an HTTP answer.
struct Refused(HttpResponse);

/// Reads a JSON body with a size limit, a time limit and a content-type check.
async fn read_body(req: &HttpRequest, mut body: web::Payload, state: &State) -> Result<web::BytesMut, Refused> {
    let content_type = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
    {
        return Err(Refused(
            HttpResponse::UnsupportedMediaType().body(format!("expected Content-Type application/json, got {content_type:?}")),
        ));
    }
    if let Some(len) = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > MAX_BODY_BYTES {
            return Err(Refused(
                HttpResponse::PayloadTooLarge().body(format!("body of {len} bytes exceeds the {MAX_BODY_BYTES}-byte limit")),
            ));
        }
    }
    let read = async {
        let mut bytes = web::BytesMut::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| Refused(HttpResponse::BadRequest().body(format!("could not read the body: {e}"))))?;
            if bytes.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(Refused(
                    HttpResponse::PayloadTooLarge().body(format!("body exceeds the {MAX_BODY_BYTES}-byte limit")),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    };
    tokio::time::timeout(state.body_timeout, read)
        .await
        .map_err(|_| Refused(HttpResponse::RequestTimeout().body("the request body did not arrive in time")))?
}

/// Bodies up to this size are parsed on the HTTP worker: that takes less
/// than handing the job to the engine's pool and back (most reviews).
const PARSE_INLINE_MAX_BYTES: usize = 16 * 1024;

/// Reads the body and parses it as an AdmissionReview. A large one is parsed
/// on the engine's pool: parsing is CPU work proportional to the object, and
/// bounding it with the rest keeps at most a few large parsed objects in
/// memory however many clients wait.
async fn read_review(req: &HttpRequest, body: web::Payload, state: &State) -> Result<Review, Refused> {
    let bytes = read_body(req, body, state).await?;
    let parsed = if bytes.len() <= PARSE_INLINE_MAX_BYTES {
        Ok(Review::from_slice(&bytes))
    } else {
        state.engine.run(move || Review::from_slice(&bytes)).await
    };
    match parsed {
        Ok(Ok(review)) => Ok(review),
        Ok(Err(message)) => Err(Refused(HttpResponse::BadRequest().body(message))),
        Err(e) => Err(Refused(HttpResponse::ServiceUnavailable().body(e.to_string()))),
    }
}

/// The review as the API server documents it: kube-core serializes the patch
/// bytes as a JSON array of numbers, which Go happens to accept; send the
/// documented base64 string instead.
fn answer(resp: AdmissionResponse) -> HttpResponse {
    use base64::Engine;
    if resp.patch.is_none() {
        return HttpResponse::Ok().json(resp.into_review());
    }
    let mut review = serde_json::to_value(resp.into_review()).unwrap_or_default();
    if let Some(slot) = review.pointer_mut("/response/patch") {
        if let Some(bytes) = slot
            .as_array()
            .map(|a| a.iter().filter_map(|b| b.as_u64().map(|b| b as u8)).collect::<Vec<u8>>())
        {
            *slot = serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
        }
    }
    HttpResponse::Ok().json(review)
}

async fn validate(req: HttpRequest, body: web::Payload, state: web::Data<State>) -> HttpResponse {
    let started = Instant::now();
    let review = match read_review(&req, body, &state).await {
        Ok(r) => r,
        Err(Refused(resp)) => {
            state.metrics.observe("validate", "bad_request", started.elapsed().as_secs_f64());
            return resp;
        }
    };
    let rejudge = admission::rejudge(&review);
    if let Rejudge::No(why) = rejudge {
        return unchanged(&review.request, why, &state, started);
    }
    let sources = match &review.object {
        Some(object) => sources::read_config_maps(state.client.as_ref(), &review.request, object).await,
        None => Default::default(),
    };
    if let Rejudge::IfSourcesChanged(before) = &rejudge {
        if before.is_some() && *before == sources.digest {
            return unchanged(&review.request, "the spec and its ConfigMaps are unchanged", &state, started);
        }
    }
    let (config_maps, notes) = (sources.found, sources.notes);
    let policy = state.policy.current();
    let integrations = state.integrations.current();
    let (request, doc, old_object) = review.into_parts();
    let request = Arc::new(request);
    let job = {
        let request = request.clone();
        move || admission::evaluate(&request, doc, old_object.as_ref(), config_maps, notes, &policy, &integrations)
    };
    let diagnostics = match state.engine.run(job).await {
        Ok(evaluation) => with_preflight(&state, evaluation).await,
        Err(e) => too_expensive(e),
    };
    let response = admission::validation_response(&request, &diagnostics);
    log("validate", &request, &response, &diagnostics, started);
    let result = if response.allowed { "allowed" } else { "denied" };
    state.metrics.observe("validate", result, started.elapsed().as_secs_f64());
    answer(response)
}

/// An UPDATE that changes nothing already judged is admitted as it is
/// (labels, finalizers, deletion): a tightened policy must not leave an
/// object unable to finish deleting. The controller judges what runs.
fn unchanged(request: &AdmissionRequest<DynamicObject>, why: &str, state: &State, started: Instant) -> HttpResponse {
    tracing::debug!(name = %request.name, why, "update admitted without a new verdict");
    let response = AdmissionResponse::from(request);
    log("validate", request, &response, &[], started);
    state.metrics.observe("validate", "allowed", started.elapsed().as_secs_f64());
    answer(response)
}

async fn with_preflight(state: &State, evaluation: Evaluation) -> Vec<Diagnostic> {
    let mut diagnostics = evaluation.report.diagnostics;
    if let (Some(preflight), Some(converted), Some(doc)) = (&state.preflight, evaluation.converted, evaluation.doc) {
        let uid = doc.value.pointer("/metadata/uid").and_then(|u| u.as_str()).map(str::to_string);
        let req = super::preflight::Request {
            name: &evaluation.name,
            namespace: &evaluation.namespace,
            owner_uid: uid.as_deref(),
        };
        diagnostics.extend(preflight.check(&state.engine, doc, &req, converted.objects).await);
    }
    diagnostics
}

/// The engine could not answer in time: refuse (fail closed), saying why.
fn too_expensive(e: crate::offload::OffloadError) -> Vec<Diagnostic> {
    let mut r = Report::default();
    r.error(Code::Invalid, "spec", e.to_string())
        .expected("definitions within ECS's own limits (64 KiB per task definition, 10 containers)");
    r.diagnostics
}

async fn mutate(req: HttpRequest, body: web::Payload, state: web::Data<State>) -> HttpResponse {
    let started = Instant::now();
    let review = match read_review(&req, body, &state).await {
        Ok(r) => r,
        Err(Refused(resp)) => {
            state.metrics.observe("mutate", "bad_request", started.elapsed().as_secs_f64());
            return resp;
        }
    };
    let Review { request, object, .. } = review;
    let request = Arc::new(request);
    let job = {
        let request = request.clone();
        move || admission::mutation_response(&request, object)
    };
    // Defaults are a convenience: if they cannot be computed in time, admit
    // unchanged and let validation say what is wrong.
    let response = state.engine.run(job).await.unwrap_or_else(|_| AdmissionResponse::from(&*request));
    log("mutate", &request, &response, &[], started);
    let result = if response.patch.is_some() { "patched" } else { "unchanged" };
    state.metrics.observe("mutate", result, started.elapsed().as_secs_f64());
    answer(response)
}

/// One line per admission; values of the object (which may hold secrets) are never logged.
fn log(endpoint: &str, req: &AdmissionRequest<DynamicObject>, resp: &AdmissionResponse, diags: &[Diagnostic], started: Instant) {
    tracing::info!(
        endpoint,
        uid = %req.uid,
        kind = %req.kind.kind,
        namespace = req.namespace.as_deref().unwrap_or(""),
        name = %req.name,
        operation = ?req.operation,
        dry_run = req.dry_run,
        allowed = resp.allowed,
        patched = resp.patch.is_some(),
        errors = diags.iter().filter(|d| d.is_error()).count(),
        warnings = diags.iter().filter(|d| !d.is_error()).count(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "admission"
    );
}

/// How the admission server listens.
pub struct Listen {
    pub tls: std::net::SocketAddr,
    pub probes: Option<std::net::SocketAddr>,
    pub tls_config: rustls::ServerConfig,
    /// Time allowed for a client to send its request head.
    pub request_timeout: Duration,
}

/// Runs the servers until SIGTERM/SIGINT (graceful: stops accepting, finishes in-flight).
pub async fn run(listen: Listen, state: Arc<State>) -> anyhow::Result<()> {
    let data = web::Data::from(state);
    let tls_data = data.clone();
    let tls = HttpServer::new(move || App::new().app_data(tls_data.clone()).configure(routes))
        .client_request_timeout(listen.request_timeout)
        .client_disconnect_timeout(Duration::from_secs(2))
        .shutdown_timeout(20)
        .bind_rustls_0_23(listen.tls, listen.tls_config)?
        .run();
    tracing::info!(address = %listen.tls, "admission webhook listening (TLS)");
    match listen.probes {
        Some(addr) => {
            let probes = HttpServer::new(move || App::new().app_data(data.clone()).configure(probe_routes))
                .workers(1)
                .bind(addr)?
                .run();
            tracing::info!(address = %addr, "health and metrics listening (HTTP)");
            futures::future::try_join(tls, probes).await?;
        }
        None => tls.await?,
    }
    Ok(())
}
