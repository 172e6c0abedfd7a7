//! Self-signed PKI for the admission webhook: a small CA plus one serving
//! certificate for the webhook Service's DNS names (and IPs, for
//! out-of-cluster development). The CA PEM, base64-encoded, is what goes into
//! `caBundle` of the webhook configurations; the CA key is never written, so
//! rotating means generating a new bundle (and updating `caBundle`).

use std::fs;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};

const CA_LIFETIME: Duration = Duration::from_secs(5 * 365 * 24 * 60 * 60);
const SERVING_LIFETIME: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// Backdating tolerates clocks (API server vs. the machine that generated the
/// cert) that are a little behind.
pub const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("at least one --dns-name or --ip is required")]
    NoSubjectAltNames,
    #[error("invalid DNS name {name:?}: {source}")]
    InvalidDnsName { name: String, source: rcgen::Error },
    #[error("generating certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
}

/// A CA certificate and a serving certificate + key signed by it, all PEM.
#[derive(Clone)]
pub struct Bundle {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

// Hand-written so the private key never ends up in logs or panic messages.
impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("ca_pem", &self.ca_pem)
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl Bundle {
    pub const CA_FILE: &'static str = "ca.crt";
    pub const CERT_FILE: &'static str = "tls.crt";
    pub const KEY_FILE: &'static str = "tls.key";

    /// Writes `ca.crt`, `tls.crt` and `tls.key` (mode 0600) into `dir`,
    /// creating it if needed. Each file is replaced atomically (temp file +
    /// rename) so a watcher never reads a half-written file.
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)?;
        write_atomic(dir, Self::CA_FILE, &self.ca_pem, 0o644)?;
        write_atomic(dir, Self::CERT_FILE, &self.cert_pem, 0o644)?;
        write_atomic(dir, Self::KEY_FILE, &self.key_pem, 0o600)
    }

    /// The CA PEM, base64-encoded, for `caBundle` in webhook configurations.
    pub fn ca_bundle_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.ca_pem)
    }
}

fn write_atomic(dir: &Path, name: &str, contents: &str, mode: u32) -> io::Result<()> {
    // NamedTempFile is created 0600, so the key is never readable by others,
    // not even briefly.
    let mut tmp = tempfile::Builder::new().prefix(&format!(".{name}.")).tempfile_in(dir)?;
    tmp.write_all(contents.as_bytes())?;
    tmp.as_file().sync_all()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    tmp.persist(dir.join(name)).map_err(|e| e.error)?;
    Ok(())
}

/// Generates a fresh CA (ECDSA P-256, 5 years) and a serving certificate
/// (ECDSA P-256, 1 year, server auth) for `dns_names` and `ips`.
pub fn generate(dns_names: &[String], ips: &[IpAddr]) -> Result<Bundle, CertError> {
    if dns_names.is_empty() && ips.is_empty() {
        return Err(CertError::NoSubjectAltNames);
    }
    // rcgen takes `time::OffsetDateTime`; building "now" from the epoch keeps
    // the `time` crate out of our direct dependencies. X.509 times are whole
    // seconds, hence the truncation.
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let now = rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(since_epoch.as_secs());
    let not_before = now - CLOCK_SKEW;

    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name = common_name("ecskube webhook CA");
    // Path length 0: this CA only ever signs leaf certificates.
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = not_before;
    ca.not_after = now + CA_LIFETIME;
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let mut leaf = CertificateParams::default();
    leaf.subject_alt_names = subject_alt_names(dns_names, ips)?;
    let cn = dns_names.first().map_or_else(|| ips[0].to_string(), Clone::clone);
    leaf.distinguished_name = common_name(&cn);
    // ECDSA keys sign; key encipherment only applies to RSA key exchange.
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = not_before;
    leaf.not_after = now + SERVING_LIFETIME;
    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;

    Ok(Bundle {
        ca_pem: ca_cert.pem(),
        cert_pem: leaf_cert.pem(),
        key_pem: leaf_key.serialize_pem(),
    })
}

/// A CA whose key is kept (in the webhook's Secret), to issue and reissue
/// serving certificates: what self-managed certificates rotate with.
#[derive(Clone)]
pub struct Authority {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// Now, in whole seconds (X.509 times are), as rcgen takes it.
macro_rules! now {
    () => {
        rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs())
    };
}

impl Authority {
    /// A new CA (ECDSA P-256) valid for `lifetime`.
    pub fn generate(lifetime: Duration) -> Result<Self, CertError> {
        let now = now!();
        let not_before = now - CLOCK_SKEW;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut ca = CertificateParams::default();
        ca.distinguished_name = common_name(&format!("ecskube webhook CA {}", now.unix_timestamp()));
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.not_before = not_before;
        ca.not_after = now + lifetime;
        let cert = ca.self_signed(&key)?;
        Ok(Authority {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A serving certificate for `dns_names`, valid for `lifetime` (at most
    /// as long as the CA): (certificate PEM, key PEM).
    pub fn issue(&self, dns_names: &[String], lifetime: Duration) -> Result<(String, String), CertError> {
        if dns_names.is_empty() {
            return Err(CertError::NoSubjectAltNames);
        }
        let ca_key = KeyPair::from_pem(&self.key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, ca_key)?;
        let now = now!();
        let not_before = now - CLOCK_SKEW;
        let mut leaf = CertificateParams::default();
        leaf.subject_alt_names = subject_alt_names(dns_names, &[])?;
        leaf.distinguished_name = common_name(&dns_names[0]);
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.use_authority_key_identifier_extension = true;
        leaf.not_before = not_before;
        leaf.not_after = now + lifetime;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert = leaf.signed_by(&key, &issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// `ecskube certs`: generates a bundle, writes it to `out_dir` and returns the
/// base64 CA bundle (the CLI prints it for pasting into `caBundle`).
pub fn run_certs_command(dns_names: &[String], ips: &[IpAddr], out_dir: &Path) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let bundle = generate(dns_names, ips)?;
    bundle
        .write(out_dir)
        .with_context(|| format!("writing certificates to {}", out_dir.display()))?;
    Ok(bundle.ca_bundle_base64())
}

fn subject_alt_names(dns_names: &[String], ips: &[IpAddr]) -> Result<Vec<SanType>, CertError> {
    let mut sans = Vec::with_capacity(dns_names.len() + ips.len());
    for name in dns_names {
        // An IP given as a "DNS name" would never match as one; accept it as an IP SAN.
        if let Ok(ip) = name.parse::<IpAddr>() {
            sans.push(SanType::IpAddress(ip));
            continue;
        }
        let ia5 = name.as_str().try_into().map_err(|source| CertError::InvalidDnsName {
            name: name.clone(),
            source,
        })?;
        sans.push(SanType::DnsName(ia5));
    }
    sans.extend(ips.iter().copied().map(SanType::IpAddress));
    Ok(sans)
}

fn common_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::client::danger::ServerCertVerifier;
    use rustls::client::WebPkiServerVerifier;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

    use super::*;

    fn der(pem: &str) -> CertificateDer<'static> {
        rustls_pemfile::certs(&mut pem.as_bytes())
            .next()
            .expect("a certificate")
            .expect("valid PEM")
    }

    /// Verifies the serving cert for `name` at time `at`, trusting only `ca_pem`.
    fn verify(bundle: &Bundle, ca_pem: &str, name: &str, at: SystemTime) -> Result<(), rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der(ca_pem)).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
        let name = ServerName::try_from(name.to_string()).unwrap();
        let at = UnixTime::since_unix_epoch(at.duration_since(UNIX_EPOCH).unwrap());
        verifier.verify_server_cert(&der(&bundle.cert_pem), &[], &name, &[], at).map(|_| ())
    }

    fn names() -> Vec<String> {
        vec![
            "ecskube-webhook.ecskube.svc".into(),
            "ecskube-webhook.ecskube.svc.cluster.local".into(),
        ]
    }

    #[test]
    fn serving_cert_chains_to_the_ca_and_carries_the_sans() {
        let ips: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        let bundle = generate(&names(), &ips).unwrap();
        let now = SystemTime::now();
        for name in names().iter().map(String::as_str).chain(["127.0.0.1", "::1"]) {
            verify(&bundle, &bundle.ca_pem, name, now).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        for name in ["ecskube-webhook.other.svc", "10.0.0.1"] {
            let err = verify(&bundle, &bundle.ca_pem, name, now).unwrap_err();
            assert!(format!("{err:?}").contains("NotValidForName"), "{name}: {err:?}");
        }
    }

    #[test]
    fn another_ca_does_not_verify_it() {
        let (a, b) = (generate(&names(), &[]).unwrap(), generate(&names(), &[]).unwrap());
        let err = verify(&a, &b.ca_pem, &names()[0], SystemTime::now()).unwrap_err();
        // Both CAs share a subject name, so webpki finds the "issuer" and rejects the signature.
        assert!(
            matches!(err, rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature)),
            "{err:?}"
        );
    }

    #[test]
    fn validity_tolerates_skew_and_lasts_a_year() {
        let bundle = generate(&names(), &[]).unwrap();
        let now = SystemTime::now();
        verify(&bundle, &bundle.ca_pem, &names()[0], now - Duration::from_secs(120)).unwrap();
        verify(
            &bundle,
            &bundle.ca_pem,
            &names()[0],
            now + SERVING_LIFETIME - Duration::from_secs(3600),
        )
        .unwrap();
        let err = verify(
            &bundle,
            &bundle.ca_pem,
            &names()[0],
            now + SERVING_LIFETIME + Duration::from_secs(3600),
        )
        .unwrap_err();
        assert!(format!("{err:?}").contains("Expired"), "{err:?}");
    }

    #[test]
    fn key_matches_the_serving_cert() {
        let bundle = generate(&names(), &[]).unwrap();
        let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut bundle.key_pem.as_bytes()).unwrap().unwrap();
        let provider = rustls::crypto::ring::default_provider();
        let certified = rustls::sign::CertifiedKey::from_der(vec![der(&bundle.cert_pem)], key, &provider).unwrap();
        certified.keys_match().unwrap();
    }

    #[test]
    fn ip_given_as_dns_name_becomes_an_ip_san() {
        let bundle = generate(&["127.0.0.1".to_string()], &[]).unwrap();
        verify(&bundle, &bundle.ca_pem, "127.0.0.1", SystemTime::now()).unwrap();
    }

    #[test]
    fn rejects_no_sans_and_invalid_names() {
        assert!(matches!(generate(&[], &[]), Err(CertError::NoSubjectAltNames)));
        assert!(matches!(
            generate(&["bad\u{e9}name".into()], &[]),
            Err(CertError::InvalidDnsName { .. })
        ));
    }

    #[test]
    fn command_writes_files_and_returns_the_ca_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("certs");
        let b64 = run_certs_command(&names(), &[], &out).unwrap();
        let ca_pem = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap();
        assert_eq!(fs::read_to_string(out.join(Bundle::CA_FILE)).unwrap(), ca_pem);
        let bundle = Bundle {
            ca_pem,
            cert_pem: fs::read_to_string(out.join(Bundle::CERT_FILE)).unwrap(),
            key_pem: fs::read_to_string(out.join(Bundle::KEY_FILE)).unwrap(),
        };
        verify(&bundle, &bundle.ca_pem, &names()[0], SystemTime::now()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |f: &str| fs::metadata(out.join(f)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(Bundle::KEY_FILE), 0o600);
            assert_eq!(mode(Bundle::CERT_FILE), 0o644);
        }
        // Rewriting over existing files works and leaves no temp files behind.
        generate(&names(), &[]).unwrap().write(&out).unwrap();
        assert_eq!(fs::read_dir(&out).unwrap().count(), 3);
    }

    #[test]
    fn an_authority_reissues_certificates_that_chain_to_it() {
        let ca = Authority::generate(Duration::from_secs(3600)).unwrap();
        let (cert_pem, key_pem) = ca.issue(&names(), Duration::from_secs(600)).unwrap();
        let bundle = Bundle {
            ca_pem: ca.cert_pem.clone(),
            cert_pem,
            key_pem,
        };
        verify(&bundle, &ca.cert_pem, &names()[0], SystemTime::now()).unwrap();
        let err = verify(&bundle, &ca.cert_pem, &names()[0], SystemTime::now() + Duration::from_secs(1200)).unwrap_err();
        assert!(format!("{err:?}").contains("Expired"), "{err:?}");
        // Another CA's bundle does not verify it, even with the same kind of name.
        let other = Authority::generate(Duration::from_secs(3600)).unwrap();
        assert!(verify(&bundle, &other.cert_pem, &names()[0], SystemTime::now()).is_err());
        assert!(!format!("{ca:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn debug_does_not_print_the_key() {
        let bundle = generate(&names(), &[]).unwrap();
        assert!(!format!("{bundle:?}").contains("PRIVATE KEY"));
    }
}
