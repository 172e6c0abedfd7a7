//! Throwaway PKI for a local control plane: one CA that signs the API server's
//! serving cert, an admin client cert (O=system:masters, so RBAC lets it do
//! anything) and any extra serving certs (e.g. for webhooks), plus the
//! service-account signing key. Nothing here is meant to leave the machine.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

/// A certificate and its private key, in both PEM (for files/caBundle) and DER
/// (for rustls) form.
pub struct IssuedCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
}

/// Paths of the files written by [`Pki::write`].
#[derive(Clone, Debug)]
pub struct PkiFiles {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub apiserver_cert: PathBuf,
    pub apiserver_key: PathBuf,
    pub admin_cert: PathBuf,
    pub admin_key: PathBuf,
    /// ECDSA P-256 (PKCS#8) key the API server and controller-manager sign
    /// service-account tokens with.
    pub service_account_key: PathBuf,
    /// Its public half (SPKI): the API server only reads public keys, or
    /// PKCS#1/SEC1 private keys, from --service-account-key-file.
    pub service_account_pub: PathBuf,
}

/// The cluster CA, kept in memory so callers can issue more certs later.
pub struct Pki {
    ca: Issuer<'static, KeyPair>,
    ca_cert_pem: String,
    ca_key_pem: String,
}

impl Pki {
    pub fn new() -> Result<Self> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn("ecskube-dev-cluster-ca", None);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key)?;
        Ok(Pki {
            ca_cert_pem: cert.pem(),
            ca_key_pem: key.serialize_pem(),
            ca: Issuer::new(params, key),
        })
    }

    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_cert_pem
    }

    /// A TLS server cert for the given names; entries that parse as IP
    /// addresses become IP SANs (webhook URLs use https://127.0.0.1:PORT).
    pub fn issue_server_cert(&self, common_name: &str, sans: &[&str]) -> Result<IssuedCert> {
        let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name = dn(common_name, None);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params)
    }

    /// A client cert; Kubernetes maps CN to the user and O to groups.
    pub fn issue_client_cert(&self, user: &str, group: Option<&str>) -> Result<IssuedCert> {
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(user, group);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params)
    }

    fn issue(&self, mut params: CertificateParams) -> Result<IssuedCert> {
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.ca)?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        })
    }

    /// Writes the CA, the API server and admin certs and the SA key to `dir`.
    pub fn write(&self, dir: &Path) -> Result<PkiFiles> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let files = PkiFiles {
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            apiserver_cert: dir.join("apiserver.crt"),
            apiserver_key: dir.join("apiserver.key"),
            admin_cert: dir.join("admin.crt"),
            admin_key: dir.join("admin.key"),
            service_account_key: dir.join("sa.key"),
            service_account_pub: dir.join("sa.pub"),
        };
        // The in-cluster names are included so the cert also works for clients
        // that use the `kubernetes` Service name (10.0.0.1 is its ClusterIP).
        let apiserver = self.issue_server_cert(
            "kube-apiserver",
            &[
                "127.0.0.1",
                "localhost",
                "10.0.0.1",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
        )?;
        let admin = self.issue_client_cert("ecskube-admin", Some("system:masters"))?;
        let sa = KeyPair::generate()?;
        let (sa_key, sa_pub) = (sa.serialize_pem(), sa.public_key_pem());
        for (path, contents) in [
            (&files.ca_cert, self.ca_cert_pem.as_str()),
            (&files.ca_key, self.ca_key_pem.as_str()),
            (&files.apiserver_cert, apiserver.cert_pem.as_str()),
            (&files.apiserver_key, apiserver.key_pem.as_str()),
            (&files.admin_cert, admin.cert_pem.as_str()),
            (&files.admin_key, admin.key_pem.as_str()),
            (&files.service_account_key, sa_key.as_str()),
            (&files.service_account_pub, sa_pub.as_str()),
        ] {
            fs::write(path, contents).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(files)
    }
}

fn dn(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if let Some(o) = organization {
        dn.push(DnType::OrganizationName, o);
    }
    dn
}
