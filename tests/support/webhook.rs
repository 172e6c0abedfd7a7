//! A tiny HTTPS server (rustls, one thread per connection, HTTP/1.1 with
//! Content-Length bodies) for admission webhooks the API server calls at
//! `https://127.0.0.1:PORT/...`. Enough for tests; not a general server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;

use ecskube::devcluster::IssuedCert;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// Handler: (path, request body) -> (HTTP status, JSON response body).
pub type Handler = dyn Fn(&str, &[u8]) -> (u16, String) + Send + Sync;

/// Serves `handler` over TLS with `cert` on 127.0.0.1; returns the port.
/// The server thread lives until the test process exits.
pub fn serve_https(cert: &IssuedCert, handler: Arc<Handler>) -> u16 {
    // Explicit provider: works whichever rustls crypto features are enabled.
    let config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.cert_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_der.clone())),
        )
        .expect("webhook TLS config");
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind webhook port");
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (config, handler) = (config.clone(), handler.clone());
            thread::spawn(move || {
                if let Err(e) = handle(stream, config, &*handler) {
                    eprintln!("test webhook: connection error: {e}");
                }
            });
        }
    });
    port
}

fn handle(stream: TcpStream, config: Arc<ServerConfig>, handler: &Handler) -> std::io::Result<()> {
    let conn = ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = BufReader::new(StreamOwned::new(conn, stream));
    // Keep-alive loop: the API server reuses connections.
    loop {
        let mut request_line = String::new();
        if tls.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let path = request_line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut content_length = 0usize;
        loop {
            let mut header = String::new();
            tls.read_line(&mut header)?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    content_length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; content_length];
        tls.read_exact(&mut body)?;
        let (status, response) = handler(&path, &body);
        let out = tls.get_mut();
        write!(
            out,
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{response}",
            response.len()
        )?;
        out.flush()?;
    }
}
