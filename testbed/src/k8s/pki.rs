//! The control plane's certificates and keys, made the way kubeadm makes them: one CA; the API
//! server's serving certificate (X.509 v3, SANs for every name and address clients use,
//! digitalSignature + keyEncipherment, serverAuth); client certificates whose subject is the
//! Kubernetes user (CN) and groups (O); and the service-account token signing key. Keys are
//! ECDSA P-256. Knows nothing about processes or where the files are used.

use std::net::IpAddr;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::{Error, Result};

/// File names inside the control plane's directory.
pub(crate) mod files {
    /// The CA certificate (`--client-ca-file`, `--root-ca-file`).
    pub(crate) const CA_CERT: &str = "ca.crt";
    /// The CA key (kept so a test can sign more certificates by hand).
    pub(crate) const CA_KEY: &str = "ca.key";
    /// The API server's serving certificate.
    pub(crate) const APISERVER_CERT: &str = "apiserver.crt";
    /// Its key.
    pub(crate) const APISERVER_KEY: &str = "apiserver.key";
    /// The service-account token signing key (private, PKCS#8).
    pub(crate) const SA_KEY: &str = "sa.key";
    /// Its public half.
    pub(crate) const SA_PUB: &str = "sa.pub";
}

/// A certificate with its private key, in PEM and DER.
#[derive(Clone)]
pub(crate) struct Identity {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
    pub(crate) cert_der: Vec<u8>,
    pub(crate) key_der: Vec<u8>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is left out: it would only clutter test failure output.
        f.debug_struct("Identity").finish_non_exhaustive()
    }
}

/// Who the API server should see behind a client certificate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subject<'a> {
    /// The user name (CN).
    pub(crate) user: &'a str,
    /// The groups (one O each).
    pub(crate) groups: &'a [&'a str],
}

/// The user kubeadm's `admin.conf` has: a member of `system:masters`, which RBAC lets do
/// anything.
pub(crate) const ADMIN: Subject<'static> = Subject {
    user: "kubernetes-admin",
    groups: &["system:masters"],
};

/// kube-controller-manager's own user; the bootstrap RBAC policy binds it to the role of the
/// same name.
pub(crate) const CONTROLLER_MANAGER: Subject<'static> = Subject {
    user: "system:kube-controller-manager",
    groups: &[],
};

/// The names and addresses the serving certificate is valid for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ServingNames {
    /// DNS names.
    pub(crate) dns: Vec<String>,
    /// IP addresses.
    pub(crate) ips: Vec<IpAddr>,
}

/// Everything a control plane needs to authenticate and be authenticated.
pub(crate) struct Pki {
    ca: Issuer<'static, KeyPair>,
    /// The CA.
    pub(crate) ca_identity: Identity,
    /// The API server's serving certificate.
    pub(crate) apiserver: Identity,
    /// The service-account token signing key, private (PKCS#8 PEM).
    pub(crate) sa_key_pem: String,
    /// Its public half (SPKI PEM).
    pub(crate) sa_pub_pem: String,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki").finish_non_exhaustive()
    }
}

fn rcgen_error(what: &str) -> impl FnOnce(rcgen::Error) -> Error + '_ {
    move |err| Error::Daemon(format!("certificate {what}: {err}"))
}

fn identity(cert: &rcgen::Certificate, key: &KeyPair) -> Identity {
    Identity {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert_der: cert.der().to_vec(),
        key_der: key.serialize_der(),
    }
}

fn leaf(common_name: &str, organizations: &[&str]) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    for organization in organizations {
        name.push(DnType::OrganizationName, *organization);
    }
    name.push(DnType::CommonName, common_name);
    params.distinguished_name = name;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.use_authority_key_identifier_extension = true;
    params
}

impl Pki {
    /// A new CA, serving certificate for `names`, and service-account key.
    pub(crate) fn generate(names: &ServingNames) -> Result<Pki> {
        let ca_key = KeyPair::generate().map_err(rcgen_error("key"))?;
        let mut ca_params = CertificateParams::default();
        let mut ca_name = DistinguishedName::new();
        ca_name.push(DnType::CommonName, "kubernetes");
        ca_params.distinguished_name = ca_name;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::KeyCertSign,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(rcgen_error("CA"))?;
        let ca_identity = identity(&ca_cert, &ca_key);
        let ca = Issuer::new(ca_params, ca_key);

        let mut params = leaf("kube-apiserver", &[]);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        for dns in &names.dns {
            let dns = dns.clone().try_into().map_err(rcgen_error("DNS name"))?;
            params.subject_alt_names.push(SanType::DnsName(dns));
        }
        for ip in &names.ips {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        let key = KeyPair::generate().map_err(rcgen_error("key"))?;
        let cert = params
            .signed_by(&key, &ca)
            .map_err(rcgen_error("kube-apiserver"))?;
        let apiserver = identity(&cert, &key);

        let sa = KeyPair::generate().map_err(rcgen_error("key"))?;
        Ok(Pki {
            ca,
            ca_identity,
            apiserver,
            sa_key_pem: sa.serialize_pem(),
            sa_pub_pem: sa.public_key_pem(),
        })
    }

    /// A client certificate for `subject`, signed by the CA.
    pub(crate) fn client(&self, subject: Subject<'_>) -> Result<Identity> {
        let mut params = leaf(subject.user, subject.groups);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().map_err(rcgen_error("key"))?;
        let cert = params
            .signed_by(&key, &self.ca)
            .map_err(rcgen_error(subject.user))?;
        Ok(identity(&cert, &key))
    }

    /// Writes the CA, the serving certificate and the service-account keys into `dir`
    /// (names in [`files`]); keys are readable by the owner only.
    pub(crate) fn write(&self, dir: &Path) -> Result<()> {
        write_file(&dir.join(files::CA_CERT), &self.ca_identity.cert_pem, false)?;
        write_file(&dir.join(files::CA_KEY), &self.ca_identity.key_pem, true)?;
        write_file(
            &dir.join(files::APISERVER_CERT),
            &self.apiserver.cert_pem,
            false,
        )?;
        write_file(
            &dir.join(files::APISERVER_KEY),
            &self.apiserver.key_pem,
            true,
        )?;
        write_file(&dir.join(files::SA_KEY), &self.sa_key_pem, true)?;
        write_file(&dir.join(files::SA_PUB), &self.sa_pub_pem, false)
    }
}

/// Writes `text` to `path`, mode 0600 if `secret`.
pub(crate) fn write_file(path: &Path, text: &str, secret: bool) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if secret {
        options.mode(0o600);
    }
    options
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(|e| Error::io(format!("write {}", path.display()), e))
}

/// The first host address of `network` (the ClusterIP the API server gives the `kubernetes`
/// Service when `network` is the first service range), or `None` for a network too small to
/// have one.
pub(crate) fn first_host(network: ipnetwork::IpNetwork) -> Option<IpAddr> {
    match network {
        ipnetwork::IpNetwork::V4(net) if net.prefix() < 32 => Some(IpAddr::from(
            u32::from(net.network()).checked_add(1)?.to_be_bytes(),
        )),
        ipnetwork::IpNetwork::V6(net) if net.prefix() < 128 => Some(IpAddr::from(
            u128::from(net.network()).checked_add(1)?.to_be_bytes(),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

    use super::*;

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn key(identity: &Identity) -> PrivateKeyDer<'static> {
        PrivatePkcs8KeyDer::from(identity.key_der.clone()).into()
    }

    /// Runs a TLS handshake in memory between a server using the serving certificate (and
    /// requiring client certificates from the CA) and a client presenting `client` to `name`.
    fn handshake(pki: &Pki, client: &Identity, name: &str) -> std::result::Result<(), String> {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(pki.ca_identity.cert_der.clone()))
            .map_err(|e| e.to_string())?;
        let roots = Arc::new(roots);
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
                .build()
                .map_err(|e| e.to_string())?;
        let server_config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![CertificateDer::from(pki.apiserver.cert_der.clone())],
                key(&pki.apiserver),
            )
            .map_err(|e| e.to_string())?;
        let client_config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_client_auth_cert(
                vec![CertificateDer::from(client.cert_der.clone())],
                key(client),
            )
            .map_err(|e| e.to_string())?;
        let name = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
        let mut client =
            ClientConnection::new(Arc::new(client_config), name).map_err(|e| e.to_string())?;
        let mut server =
            ServerConnection::new(Arc::new(server_config)).map_err(|e| e.to_string())?;
        for _ in 0..10 {
            let mut wire = Vec::new();
            client.write_tls(&mut wire).map_err(|e| e.to_string())?;
            server.read_tls(&mut &wire[..]).map_err(|e| e.to_string())?;
            server
                .process_new_packets()
                .map_err(|e| format!("server: {e}"))?;
            let mut wire = Vec::new();
            server.write_tls(&mut wire).map_err(|e| e.to_string())?;
            client.read_tls(&mut &wire[..]).map_err(|e| e.to_string())?;
            client
                .process_new_packets()
                .map_err(|e| format!("client: {e}"))?;
            if !client.is_handshaking() && !server.is_handshaking() {
                return Ok(());
            }
        }
        Err("handshake did not finish".into())
    }

    fn names() -> ServingNames {
        ServingNames {
            dns: vec!["kubernetes.default.svc".into()],
            ips: vec![
                "127.0.0.1".parse().expect("ip"),
                "10.96.0.1".parse().expect("ip"),
            ],
        }
    }

    #[test]
    fn clients_and_server_trust_each_other_through_the_ca() {
        let pki = Pki::generate(&names()).expect("pki");
        let admin = pki.client(ADMIN).expect("admin");
        for name in ["127.0.0.1", "10.96.0.1", "kubernetes.default.svc"] {
            handshake(&pki, &admin, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let err = handshake(&pki, &admin, "10.0.0.9").expect_err("not a SAN");
        assert!(err.contains("client"), "{err}");
    }

    #[test]
    fn a_serving_certificate_is_no_client_certificate() {
        let pki = Pki::generate(&names()).expect("pki");
        let err =
            handshake(&pki, &pki.apiserver.clone(), "127.0.0.1").expect_err("serverAuth only");
        assert!(err.contains("server"), "{err}");
    }

    #[test]
    fn a_certificate_from_another_ca_is_refused() {
        let pki = Pki::generate(&names()).expect("pki");
        let other = Pki::generate(&names())
            .expect("pki")
            .client(ADMIN)
            .expect("admin");
        assert!(handshake(&pki, &other, "127.0.0.1").is_err());
    }

    #[test]
    fn first_host_is_the_network_plus_one() {
        let net = |s: &str| s.parse::<ipnetwork::IpNetwork>().expect("net");
        assert_eq!(
            first_host(net("10.96.0.0/16")),
            Some("10.96.0.1".parse().expect("ip"))
        );
        assert_eq!(
            first_host(net("fd00:10:96::/108")),
            Some("fd00:10:96::1".parse().expect("ip"))
        );
        assert_eq!(first_host(net("10.96.0.0/32")), None);
    }
}
