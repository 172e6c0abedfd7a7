//! TLS for the admission server: rustls (ring), TLS 1.3 and 1.2 only, with a
//! serving certificate that is reloaded from disk while the listener keeps
//! running.
//!
//! Kubernetes updates a mounted Secret by swapping a `..data` symlink, so the
//! files change under a stable path. [`ReloadingCert`] polls them and swaps the
//! `CertifiedKey` that new handshakes get; established connections keep the
//! session they negotiated and are never dropped. A bad new pair (missing
//! file, garbage, key not matching the cert) is rejected and the last good
//! pair keeps serving.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::version::{TLS12, TLS13};
use rustls::{ServerConfig, SupportedProtocolVersion};

/// The only protocol versions the admission server speaks (rustls implements
/// nothing older than TLS 1.2).
pub const PROTOCOL_VERSIONS: &[&SupportedProtocolVersion] = &[&TLS13, &TLS12];

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: invalid PEM: {source}", path.display())]
    Pem { path: PathBuf, source: std::io::Error },
    #[error("{}: no certificate found", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{}: no private key found", path.display())]
    NoPrivateKey { path: PathBuf },
    #[error("{}: unusable private key: {source}", path.display())]
    InvalidKey { path: PathBuf, source: rustls::Error },
    #[error("{}: not a usable client CA: {message}", path.display())]
    ClientCa { path: PathBuf, message: String },
    #[error("{} does not match the certificate in {}: {source}", key.display(), cert.display())]
    KeyMismatch {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
}

/// What is being served, with the file contents it came from (to detect changes).
struct Loaded {
    certified: Arc<CertifiedKey>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

/// A server certificate resolver whose certificate can be replaced at runtime.
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Loaded>,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
}

impl ReloadingCert {
    /// Loads the initial pair; any problem is an error naming the file.
    pub fn load(cert_path: impl Into<PathBuf>, key_path: impl Into<PathBuf>) -> Result<Arc<Self>, TlsError> {
        let (cert_path, key_path) = (cert_path.into(), key_path.into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let loaded = read_pair(&cert_path, &key_path, &provider)?;
        Ok(Arc::new(ReloadingCert {
            cert_path,
            key_path,
            provider,
            current: RwLock::new(loaded),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
        }))
    }

    /// A pair held in memory (a Secret read through the API), replaced with
    /// [`ReloadingCert::replace`]; `source` names it in errors.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8], source: &str) -> Result<Arc<Self>, TlsError> {
        let path = PathBuf::from(source);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let loaded = parse_pair(&path, &path, cert_pem.to_vec(), key_pem.to_vec(), &provider)?;
        Ok(Arc::new(ReloadingCert {
            cert_path: path.clone(),
            key_path: path,
            provider,
            current: RwLock::new(loaded),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
        }))
    }

    /// Serves `cert_pem`/`key_pem` from now on, unless they are unusable (the
    /// current pair stays). `Ok(false)`: that is already the pair served.
    pub fn replace(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<bool, TlsError> {
        {
            let current = self.current.read().unwrap_or_else(|p| p.into_inner());
            if current.cert_pem == cert_pem && current.key_pem == key_pem {
                return Ok(false);
            }
        }
        let loaded =
            parse_pair(&self.cert_path, &self.key_path, cert_pem.to_vec(), key_pem.to_vec(), &self.provider).map_err(|e| self.failed(e))?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = loaded;
        self.reloads.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    /// When the served certificate expires (seconds since the epoch).
    pub fn not_after(&self) -> Option<i64> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        let der = current.certified.cert.first()?;
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
        Some(cert.validity().not_after.timestamp())
    }

    /// Re-reads the files. Returns `Ok(true)` if a new pair is now served,
    /// `Ok(false)` if the files are unchanged, and an error (keeping the
    /// current pair) if the new files are unusable.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let (cert_pem, key_pem) = match (read(&self.cert_path), read(&self.key_path)) {
            (Ok(c), Ok(k)) => (c, k),
            (Err(e), _) | (_, Err(e)) => return Err(self.failed(e)),
        };
        {
            let current = self.current.read().unwrap_or_else(|p| p.into_inner());
            if current.cert_pem == cert_pem && current.key_pem == key_pem {
                return Ok(false);
            }
        }
        let loaded = parse_pair(&self.cert_path, &self.key_path, cert_pem, key_pem, &self.provider).map_err(|e| self.failed(e))?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = loaded;
        self.reloads.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    fn failed(&self, e: TlsError) -> TlsError {
        self.reload_failures.fetch_add(1, Ordering::Relaxed);
        e
    }

    /// Number of times a changed pair was loaded (not counting startup).
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// Number of reload attempts that failed (each poll of a still-bad pair counts).
    pub fn reload_failures(&self) -> u64 {
        self.reload_failures.load(Ordering::Relaxed)
    }

    /// The pair new handshakes are served.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).certified.clone()
    }

    /// Polls the files every `interval` until the returned task is aborted.
    /// Must be called within a Tokio runtime. Failures are logged once per
    /// distinct error, not on every poll.
    pub fn spawn_watcher(self: Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await; // the first tick is immediate; startup already loaded the files
            let mut last_error: Option<String> = None;
            loop {
                ticker.tick().await;
                // File reads block; keep them off the async worker.
                let this = self.clone();
                let result = match tokio::task::spawn_blocking(move || this.reload()).await {
                    Ok(result) => result,
                    Err(join) => {
                        tracing::error!(error = %join, "TLS certificate reload panicked");
                        continue;
                    }
                };
                match result {
                    Ok(true) => {
                        tracing::info!(cert = %self.cert_path.display(), reloads = self.reloads(), "reloaded TLS certificate");
                        last_error = None;
                    }
                    Ok(false) => {
                        if last_error.take().is_some() {
                            tracing::info!(cert = %self.cert_path.display(), "TLS certificate files are usable again; unchanged");
                        }
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        if last_error.as_deref() != Some(msg.as_str()) {
                            tracing::warn!(error = %msg, "TLS certificate reload failed; still serving the previous certificate");
                            last_error = Some(msg);
                        }
                    }
                }
            }
        })
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

// Hand-written: never print key material.
impl fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .field("reloads", &self.reloads())
            .field("reload_failures", &self.reload_failures())
            .finish_non_exhaustive()
    }
}

/// The admission server's rustls config: ring, TLS 1.3 + 1.2, ALPN
/// http/1.1 (actix-web is built without HTTP/2; it also prepends its own
/// protocol list, so the duplicate entry is harmless). Without a client CA
/// anyone who reaches the port may ask; see [`client_verifier`].
pub fn server_config(resolver: Arc<ReloadingCert>) -> ServerConfig {
    with_client_auth(resolver, None)
}

/// [`server_config`], requiring a client certificate signed by `client_ca`
/// when one is given (`--client-ca`).
pub fn with_client_auth(resolver: Arc<ReloadingCert>, client_ca: Option<Arc<dyn ClientCertVerifier>>) -> ServerConfig {
    let builder = ServerConfig::builder_with_provider(resolver.provider.clone())
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .expect("the ring provider supports TLS 1.2 and 1.3");
    let builder = match client_ca {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

/// Only clients with a certificate from the CA in `path` may connect: the
/// API server, when its AdmissionConfiguration gives it one (README,
/// "Security"). Read once at start.
pub fn client_verifier(path: &Path) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let pem = read(path)?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|source| TlsError::Pem {
            path: path.to_owned(),
            source,
        })?;
        roots.add(cert).map_err(|source| TlsError::InvalidKey {
            path: path.to_owned(),
            source,
        })?;
    }
    if roots.is_empty() {
        return Err(TlsError::NoCertificate { path: path.to_owned() });
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| TlsError::ClientCa {
            path: path.to_owned(),
            message: e.to_string(),
        })
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn read_pair(cert_path: &Path, key_path: &Path, provider: &CryptoProvider) -> Result<Loaded, TlsError> {
    parse_pair(cert_path, key_path, read(cert_path)?, read(key_path)?, provider)
}

fn parse_pair(
    cert_path: &Path,
    key_path: &Path,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    provider: &CryptoProvider,
) -> Result<Loaded, TlsError> {
    let chain = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            path: cert_path.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert_path.to_owned(),
        });
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|source| TlsError::Pem {
            path: key_path.to_owned(),
            source,
        })?
        .ok_or_else(|| TlsError::NoPrivateKey { path: key_path.to_owned() })?;
    let signing_key = provider.key_provider.load_private_key(key).map_err(|source| TlsError::InvalidKey {
        path: key_path.to_owned(),
        source,
    })?;
    let certified = CertifiedKey::new(chain, signing_key);
    // Also catches a half-rotated pair (new cert, old key); the next poll retries.
    match certified.keys_match() {
        // Same leniency as `CertifiedKey::from_der`: a provider that cannot tell is not a mismatch.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(source) => {
            return Err(TlsError::KeyMismatch {
                cert: cert_path.to_owned(),
                key: key_path.to_owned(),
                source,
            })
        }
    }
    Ok(Loaded {
        certified: Arc::new(certified),
        cert_pem,
        key_pem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs;

    fn write_bundle(dir: &Path) -> certs::Bundle {
        let bundle = certs::generate(&["localhost".to_string()], &[]).unwrap();
        bundle.write(dir).unwrap();
        bundle
    }

    fn paths(dir: &Path) -> (PathBuf, PathBuf) {
        (dir.join("tls.crt"), dir.join("tls.key"))
    }

    #[test]
    fn startup_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = paths(dir.path());
        let err = ReloadingCert::load(&cert, &key).unwrap_err();
        assert!(err.to_string().contains("tls.crt"), "{err}");

        write_bundle(dir.path());
        fs::write(&key, "not a key").unwrap();
        let err = ReloadingCert::load(&cert, &key).unwrap_err();
        assert!(
            matches!(err, TlsError::NoPrivateKey { .. }) && err.to_string().contains("tls.key"),
            "{err}"
        );

        fs::write(&cert, "").unwrap();
        let err = ReloadingCert::load(&cert, &key).unwrap_err();
        assert!(
            matches!(err, TlsError::NoCertificate { .. }) && err.to_string().contains("tls.crt"),
            "{err}"
        );
    }

    #[test]
    fn mismatched_key_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = paths(dir.path());
        write_bundle(dir.path());
        let other = certs::generate(&["localhost".to_string()], &[]).unwrap();
        fs::write(&key, &other.key_pem).unwrap();
        let err = ReloadingCert::load(&cert, &key).unwrap_err();
        assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
    }

    #[test]
    fn reload_swaps_only_on_change_and_keeps_the_last_good_pair() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = paths(dir.path());
        write_bundle(dir.path());
        let resolver = ReloadingCert::load(&cert, &key).unwrap();
        let first = resolver.current();
        assert!(!resolver.reload().unwrap());

        let second = write_bundle(dir.path());
        assert!(resolver.reload().unwrap());
        assert_eq!((resolver.reloads(), resolver.reload_failures()), (1, 0));
        assert!(!Arc::ptr_eq(&first, &resolver.current()));
        let served = rustls_pemfile::certs(&mut second.cert_pem.as_bytes()).next().unwrap().unwrap();
        assert_eq!(resolver.current().cert[0], served);

        fs::write(&key, "garbage").unwrap();
        assert!(resolver.reload().is_err());
        assert!(resolver.reload().is_err());
        assert_eq!((resolver.reloads(), resolver.reload_failures()), (1, 2));
        assert_eq!(resolver.current().cert[0], served);

        fs::remove_file(&cert).unwrap();
        assert!(matches!(resolver.reload(), Err(TlsError::Read { .. })));
        assert_eq!(resolver.current().cert[0], served);
    }

    #[test]
    fn debug_hides_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = paths(dir.path());
        write_bundle(dir.path());
        let resolver = ReloadingCert::load(&cert, &key).unwrap();
        let debug = format!("{resolver:?}");
        assert!(debug.contains("tls.crt") && !debug.contains("PRIVATE"), "{debug}");
    }
}
