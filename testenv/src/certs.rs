//! The environment's PKI, generated fresh for every environment with `rcgen`.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use crate::Error;

/// Paths of the generated PEM files.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA certificate: signs the serving and client certificates.
    pub ca_cert: PathBuf,
    /// The API server's serving certificate (127.0.0.1, localhost, kubernetes.default...).
    pub serving_cert: PathBuf,
    /// The serving certificate's key.
    pub serving_key: PathBuf,
    /// The admin client certificate (`CN=rollout-testenv-admin`, `O=system:masters`).
    pub admin_cert: PathBuf,
    /// The admin client certificate's key.
    pub admin_key: PathBuf,
    /// The service-account token signing key.
    pub sa_key: PathBuf,
    /// The public half of the service-account key, for token verification.
    pub sa_pub: PathBuf,
}

fn cert_err(what: &'static str) -> impl FnOnce(rcgen::Error) -> Error {
    move |source| Error::Certificate { what, source }
}

fn name(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if let Some(org) = organization {
        dn.push(DnType::OrganizationName, org);
    }
    dn
}

fn write(dir: &Path, file: &str, contents: &str) -> Result<PathBuf, Error> {
    let path = dir.join(file);
    std::fs::write(&path, contents).map_err(Error::io(format!("writing {}", path.display())))?;
    Ok(path)
}

/// Generates the CA, the serving and admin certificates and the
/// service-account key pair into `dir`.
pub fn generate(dir: &Path) -> Result<Pki, Error> {
    let ca_key = KeyPair::generate().map_err(cert_err("the CA key"))?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = name("rollout-testenv-ca", None);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(cert_err("the CA certificate"))?;
    let ca = Issuer::new(ca_params, ca_key);

    let serving_key = KeyPair::generate().map_err(cert_err("the serving key"))?;
    let mut serving = CertificateParams::new(vec![
        "127.0.0.1".to_owned(),
        "localhost".to_owned(),
        "kubernetes".to_owned(),
        "kubernetes.default".to_owned(),
        "kubernetes.default.svc".to_owned(),
        "kubernetes.default.svc.cluster.local".to_owned(),
        crate::SERVICE_IP.to_owned(),
    ])
    .map_err(cert_err("the serving certificate's names"))?;
    serving.distinguished_name = name("kube-apiserver", None);
    serving.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let serving_cert = serving
        .signed_by(&serving_key, &ca)
        .map_err(cert_err("the serving certificate"))?;

    let admin_key = KeyPair::generate().map_err(cert_err("the admin key"))?;
    let mut admin = CertificateParams::default();
    admin.distinguished_name = name("rollout-testenv-admin", Some("system:masters"));
    admin.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let admin_cert = admin
        .signed_by(&admin_key, &ca)
        .map_err(cert_err("the admin certificate"))?;

    let sa_key = KeyPair::generate().map_err(cert_err("the service-account key"))?;

    Ok(Pki {
        ca_cert: write(dir, "ca.crt", &ca_cert.pem())?,
        serving_cert: write(dir, "apiserver.crt", &serving_cert.pem())?,
        serving_key: write(dir, "apiserver.key", &serving_key.serialize_pem())?,
        admin_cert: write(dir, "admin.crt", &admin_cert.pem())?,
        admin_key: write(dir, "admin.key", &admin_key.serialize_pem())?,
        sa_key: write(dir, "sa.key", &sa_key.serialize_pem())?,
        sa_pub: write(dir, "sa.pub", &sa_key.public_key_pem())?,
    })
}
