//! The admission server's TLS end to end, as `ecskube serve` wires it: the
//! real binary (`--webhook-only`), whose certificate is rotated on disk the
//! way kubelet updates a mounted Secret, checked with a plain rustls client
//! over TcpStream and through the process's own /metrics.
#![cfg(unix)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ecskube::certs::{self, Bundle};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::version::{TLS12, TLS13};
use rustls::{ClientConfig, ClientConnection, ProtocolVersion, RootCertStore, StreamOwned, SupportedProtocolVersion};

type Tls = StreamOwned<ClientConnection, TcpStream>;

const POLL: Duration = Duration::from_millis(100);

fn bundle() -> Bundle {
    certs::generate(&["localhost".to_string()], &["127.0.0.1".parse().unwrap()]).unwrap()
}

fn der(pem: &str) -> CertificateDer<'static> {
    rustls_pemfile::certs(&mut pem.as_bytes()).next().unwrap().unwrap()
}

/// Mimics kubelet's AtomicWriter: each version of the Secret lives in its own
/// directory, `..data` points at the current one, and `tls.crt`/`tls.key` are
/// symlinks through `..data`; an update renames a new symlink over `..data`.
struct SecretMount {
    dir: PathBuf,
    generation: u32,
}

impl SecretMount {
    fn new(dir: &Path, bundle: &Bundle) -> Self {
        let mut mount = SecretMount {
            dir: dir.to_owned(),
            generation: 0,
        };
        mount.publish(bundle);
        for file in [Bundle::CERT_FILE, Bundle::KEY_FILE] {
            std::os::unix::fs::symlink(format!("..data/{file}"), dir.join(file)).unwrap();
        }
        mount
    }

    fn publish(&mut self, bundle: &Bundle) {
        self.generation += 1;
        let name = format!("..gen{}", self.generation);
        bundle.write(&self.dir.join(&name)).unwrap();
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&name, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
    }

    fn cert(&self) -> PathBuf {
        self.dir.join(Bundle::CERT_FILE)
    }

    fn key(&self) -> PathBuf {
        self.dir.join(Bundle::KEY_FILE)
    }
}

/// `ecskube serve --webhook-only` on loopback, serving the mount's files.
struct Server {
    addr: SocketAddr,
    probes: u16,
    child: std::process::Child,
    _log_dir: tempfile::TempDir,
}

impl Server {
    fn start(cert: &Path, key: &Path) -> Self {
        let port = ecskube::devcluster::free_port().unwrap();
        let probes = ecskube::devcluster::free_port().unwrap();
        let log_dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(log_dir.path().join("serve.log")).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_ecskube"))
            .args([
                "serve",
                "--webhook-only",
                &format!("--listen=127.0.0.1:{port}"),
                &format!("--probe-listen=127.0.0.1:{probes}"),
                &format!("--tls-cert={}", cert.display()),
                &format!("--tls-key={}", key.display()),
                &format!("--reload-interval-ms={}", POLL.as_millis()),
            ])
            .env_remove("KUBECONFIG")
            .env("HOME", log_dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let server = Server {
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            probes,
            child,
            _log_dir: log_dir,
        };
        let start = Instant::now();
        while !ecskube::devcluster::ecskube::http_get(probes, "/readyz").is_ok_and(|(code, _)| code == 200) {
            let log = std::fs::read_to_string(server._log_dir.path().join("serve.log")).unwrap_or_default();
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "ecskube serve did not become ready:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// A counter from the process's own /metrics.
    fn counter(&self, name: &str) -> u64 {
        let (_, text) = ecskube::devcluster::ecskube::http_get(self.probes, "/metrics").unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client trusting only `ca_pem`. Resumption is off so every connection
/// does a full handshake and really verifies what the server presents.
fn client_config(ca_pem: &str, versions: &[&'static SupportedProtocolVersion]) -> Arc<ClientConfig> {
    client_config_trusting(&[ca_pem], versions)
}

fn client_config_trusting(ca_pems: &[&str], versions: &[&'static SupportedProtocolVersion]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for pem in ca_pems {
        roots.add(der(pem)).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// Connects and completes the handshake, so verification errors surface here.
fn connect_with(addr: SocketAddr, ca_pem: &str, versions: &[&'static SupportedProtocolVersion]) -> io::Result<Tls> {
    connect_using(addr, client_config(ca_pem, versions))
}

fn connect_using(addr: SocketAddr, config: Arc<ClientConfig>) -> io::Result<Tls> {
    let conn = ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).map_err(io::Error::other)?;
    let sock = TcpStream::connect(addr)?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut tls = StreamOwned::new(conn, sock);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

fn connect(addr: SocketAddr, ca_pem: &str) -> io::Result<Tls> {
    connect_with(addr, ca_pem, &[&TLS13, &TLS12])
}

/// One keep-alive HTTP/1.1 GET of /healthz; returns the body of a 200 response ("ok").
fn get(tls: &mut Tls) -> String {
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    tls.flush().unwrap();
    let response = read_response(tls).unwrap();
    assert!(response.status.starts_with("HTTP/1.1 200"), "{:?}", response.status);
    assert!(!response.closes, "the server asked to close a keep-alive connection");
    response.body
}

struct Response {
    status: String,
    /// `Connection: close` was among the headers.
    closes: bool,
    body: String,
}

/// One HTTP/1.1 response with a Content-Length body.
fn read_response(tls: &mut Tls) -> io::Result<Response> {
    // Nothing follows the response on the wire, so the BufReader cannot swallow later bytes.
    let mut reader = BufReader::new(tls);
    let mut status = String::new();
    reader.read_line(&mut status)?;
    let (mut length, mut closes) = (0, false);
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().map_err(io::Error::other)?;
            }
            closes |= name.eq_ignore_ascii_case("connection") && value.trim().eq_ignore_ascii_case("close");
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Response {
        status: status.trim_end().to_string(),
        closes,
        body: String::from_utf8(body).map_err(io::Error::other)?,
    })
}

fn served_cert(tls: &Tls) -> CertificateDer<'static> {
    tls.conn.peer_certificates().unwrap()[0].clone().into_owned()
}

/// Waits until `f` holds; returns how long that took.
fn wait_for(what: &str, f: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
    start.elapsed()
}

fn assert_rejected_by_verification(result: io::Result<Tls>) {
    let err = result.expect_err("handshake should fail");
    let tls_err = err.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
    // Both CAs are named "ecskube webhook CA", so webpki reports a bad signature
    // rather than an unknown issuer; either way the certificate is rejected.
    assert!(matches!(tls_err, Some(rustls::Error::InvalidCertificate(_))), "{err:?}");
}

#[test]
fn rotation_is_picked_up_without_dropping_connections() {
    let dir = tempfile::tempdir().unwrap();
    let ca1 = bundle();
    let mut mount = SecretMount::new(dir.path(), &ca1);
    let server = Server::start(&mount.cert(), &mount.key());

    // Connection A: established with CA1's cert, kept alive across the rotation.
    let mut a = connect(server.addr, &ca1.ca_pem).unwrap();
    assert_eq!(get(&mut a), "ok");
    assert_eq!(a.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(served_cert(&a), der(&ca1.cert_pem));

    // Rotate to CA2 with a new key, as kubelet would.
    let ca2 = bundle();
    mount.publish(&ca2);
    let took = wait_for("the rotation to be picked up", || {
        server.counter("ecskube_certificate_reloads_total") == 1
    });
    eprintln!("rotation picked up after {took:?} (poll interval {POLL:?})");
    assert_eq!(server.counter("ecskube_certificate_reload_failures_total"), 0);

    // (1) The existing connection is not dropped and keeps its session.
    assert_eq!(get(&mut a), "ok");
    assert_eq!(get(&mut a), "ok");
    // (2) New connections get the new cert, which verifies against CA2.
    let mut b = connect(server.addr, &ca2.ca_pem).unwrap();
    assert_eq!(get(&mut b), "ok");
    assert_eq!(served_cert(&b), der(&ca2.cert_pem));
    // (3) Clients still trusting only CA1 now fail verification.
    assert_rejected_by_verification(connect(server.addr, &ca1.ca_pem));

    // (4) A bad update (garbage key) is rejected; the last good cert keeps serving.
    let mut bad = bundle();
    bad.key_pem = "-----BEGIN PRIVATE KEY-----\nZ2FyYmFnZQ==\n-----END PRIVATE KEY-----\n".into();
    mount.publish(&bad);
    wait_for("the bad key to be rejected", || {
        server.counter("ecskube_certificate_reload_failures_total") >= 1
    });
    assert_eq!(server.counter("ecskube_certificate_reloads_total"), 1);
    let mut c = connect(server.addr, &ca2.ca_pem).unwrap();
    assert_eq!(get(&mut c), "ok");
    assert_eq!(served_cert(&c), der(&ca2.cert_pem));
    assert_eq!(get(&mut a), "ok");

    // Recovery: `ecskube certs --out` style in-place rewrite (replaces the symlinks).
    let ca3 = bundle();
    ca3.write(dir.path()).unwrap();
    wait_for("recovery", || server.counter("ecskube_certificate_reloads_total") == 2);
    let mut d = connect(server.addr, &ca3.ca_pem).unwrap();
    assert_eq!(get(&mut d), "ok");
    assert_eq!(served_cert(&d), der(&ca3.cert_pem));
    assert_eq!(get(&mut b), "ok");
}

#[test]
fn only_tls_1_2_and_1_3_are_offered() {
    let dir = tempfile::tempdir().unwrap();
    let ca = bundle();
    ca.write(dir.path()).unwrap();
    let server = Server::start(&dir.path().join("tls.crt"), &dir.path().join("tls.key"));

    for (version, expected) in [(&TLS12, ProtocolVersion::TLSv1_2), (&TLS13, ProtocolVersion::TLSv1_3)] {
        let mut tls = connect_with(server.addr, &ca.ca_pem, &[version]).unwrap();
        assert_eq!(tls.conn.protocol_version(), Some(expected));
        assert_eq!(get(&mut tls), "ok");
    }

    // By behaviour: TLS 1.0 and 1.1 ClientHellos get a fatal protocol_version alert.
    for minor in [1, 2] {
        let mut sock = TcpStream::connect(server.addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        sock.write_all(&legacy_client_hello(minor)).unwrap();
        let mut alert = [0u8; 7];
        sock.read_exact(&mut alert).unwrap();
        assert_eq!(alert[0], 0x15, "TLS 1.{}: expected an alert record, got {alert:02x?}", minor - 1);
        assert_eq!(
            &alert[5..],
            [2, 70],
            "TLS 1.{}: expected fatal protocol_version, got {alert:02x?}",
            minor - 1
        );
    }
}

/// A minimal TLS 1.0 (`minor` = 1) or 1.1 (`minor` = 2) ClientHello. It carries
/// signature_algorithms, which rustls checks before the version; a genuine
/// pre-1.2 client would not send it and is refused with handshake_failure.
fn legacy_client_hello(minor: u8) -> Vec<u8> {
    let mut body = vec![0x03, minor]; // client_version
    body.extend([0x11; 32]); // random
    body.push(0); // no session id
    body.extend([0x00, 0x04, 0xc0, 0x09, 0xc0, 0x13]); // ECDHE-{ECDSA,RSA}-AES128-SHA
    body.extend([0x01, 0x00]); // null compression
    body.extend([0x00, 0x08, 0x00, 0x0d, 0x00, 0x04, 0x00, 0x02, 0x04, 0x03]); // signature_algorithms: ecdsa_secp256r1_sha256
    let mut handshake = vec![0x01, 0x00, 0x00, body.len() as u8];
    handshake.extend(body);
    let mut record = vec![0x16, 0x03, 0x01, 0x00, handshake.len() as u8];
    record.extend(handshake);
    record
}

/// The sample ECSDeployment in a CREATE AdmissionReview.
fn sample_review() -> String {
    let object: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/samples/ecsdeployment.json")).unwrap())
            .unwrap();
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "7d1e0c3a-rotation", "operation": "CREATE", "namespace": "default", "name": object["metadata"]["name"],
            "kind": {"group": "ecskube.ecskube", "version": "v1alpha1", "kind": "ECSDeployment"},
            "resource": {"group": "ecskube.ecskube", "version": "v1alpha1", "resource": "ecsdeployments"},
            "userInfo": {"username": "load"}, "object": object, "dryRun": false
        }
    })
    .to_string()
}

/// One keep-alive POST of an AdmissionReview to /validate: Ok when the answer
/// is a 200 carrying the review's verdict, else what went wrong.
fn validate(tls: &mut Tls, body: &str) -> Result<(), String> {
    let request = format!(
        "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes()).map_err(|e| format!("write: {e}"))?;
    tls.flush().map_err(|e| format!("flush: {e}"))?;
    let response = read_response(tls).map_err(|e| format!("read: {e}"))?;
    if !response.status.starts_with("HTTP/1.1 200") || !response.body.contains("\"allowed\":true") {
        return Err(format!("{} {}", response.status, response.body));
    }
    Ok(())
}

#[test]
fn certificate_rotations_under_load_fail_no_request() {
    const ROTATIONS: usize = 6;
    const CLIENTS: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let bundles: Vec<Bundle> = (0..=ROTATIONS).map(|_| bundle()).collect();
    let mut mount = SecretMount::new(dir.path(), &bundles[0]);
    let server = Server::start(&mount.cert(), &mount.key());
    // The clients trust every CA, as the API server does while caBundle
    // holds the old and the new CA; each opens a new connection (a full
    // handshake) every few requests and keeps it alive in between.
    let cas: Vec<&str> = bundles.iter().map(|b| b.ca_pem.as_str()).collect();
    let config = client_config_trusting(&cas, &[&TLS13, &TLS12]);
    let body = sample_review();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let progress = std::sync::atomic::AtomicUsize::new(0);
    let mut at_rotation = Vec::new();
    let (answered, failures, served) = std::thread::scope(|s| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let (config, body, stop, progress) = (config.clone(), &body, &stop, &progress);
                s.spawn(move || {
                    let (mut answered, mut failures, mut served) = (0usize, Vec::new(), std::collections::HashSet::new());
                    let mut conn: Option<Tls> = None;
                    let mut uses = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        if conn.is_none() || uses >= 2 + client % 4 {
                            match connect_using(server.addr, config.clone()) {
                                Ok(tls) => {
                                    served.insert(served_cert(&tls));
                                    conn = Some(tls);
                                    uses = 0;
                                }
                                Err(e) => {
                                    failures.push(format!("connect: {e}"));
                                    conn = None;
                                    continue;
                                }
                            }
                        }
                        uses += 1;
                        match validate(conn.as_mut().expect("connected"), body) {
                            Ok(()) => {
                                answered += 1;
                                progress.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            Err(e) => {
                                failures.push(e);
                                conn = None;
                            }
                        }
                    }
                    (answered, failures, served)
                })
            })
            .collect();
        for (i, next) in bundles.iter().enumerate().skip(1) {
            std::thread::sleep(Duration::from_millis(300));
            mount.publish(next);
            wait_for("the rotation to be picked up", || {
                server.counter("ecskube_certificate_reloads_total") == i as u64
            });
            at_rotation.push(progress.load(std::sync::atomic::Ordering::Relaxed));
        }
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        eprintln!("admissions answered when each rotation was picked up: {at_rotation:?}");
        let mut totals = (0, Vec::new(), std::collections::HashSet::new());
        for c in clients {
            let (a, f, s) = c.join().unwrap();
            totals.0 += a;
            totals.1.extend(f);
            totals.2.extend(s);
        }
        totals
    });
    eprintln!("{answered} admissions over {ROTATIONS} rotations, {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(server.counter("ecskube_certificate_reload_failures_total"), 0);
    // Every certificate was served to some client while the load ran.
    let expected: std::collections::HashSet<_> = bundles.iter().map(|b| der(&b.cert_pem)).collect();
    assert_eq!(served, expected, "not every certificate was served under load");
    assert!(answered >= 100, "too little load to judge: {answered} admissions");
    // And the load ran through every rotation, not only before or after them.
    assert!(
        at_rotation.windows(2).all(|w| w[0] < w[1]) && at_rotation[0] > 0 && answered > at_rotation[ROTATIONS - 1],
        "admissions answered by each rotation: {at_rotation:?} of {answered}"
    );
}
