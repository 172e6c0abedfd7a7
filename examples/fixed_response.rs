//! The framework's limit in `make bench-webhook`: the same actix-web server
//! and rustls configuration as `ecskube serve`, reading the whole body as the
//! webhook does, then answering a fixed "allowed" review without looking at
//! it. ecskube's throughput as a share of this one is the cost of its work.
//!
//! `cargo run --release --example fixed_response -- ADDR CERT KEY`

use actix_web::{web, App, HttpResponse, HttpServer};
use ecskube::webhook::tls::{server_config, ReloadingCert};

const ALLOWED: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"bench","allowed":true}}"#;

async fn allow(body: web::Bytes) -> HttpResponse {
    std::hint::black_box(body.len());
    HttpResponse::Ok().content_type("application/json").body(ALLOWED)
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, cert, key] = args.as_slice() else {
        anyhow::bail!("usage: fixed_response ADDR CERT KEY");
    };
    let tls = server_config(ReloadingCert::load(cert, key)?);
    HttpServer::new(|| {
        App::new()
            .app_data(web::PayloadConfig::new(3 * 1024 * 1024))
            .route("/validate", web::post().to(allow))
            .route("/mutate", web::post().to(allow))
    })
    .bind_rustls_0_23(listen.as_str(), tls)?
    .run()
    .await?;
    Ok(())
}
