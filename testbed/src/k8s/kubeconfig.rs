//! Kubeconfig files: one cluster (server URL and CA), one user (a client certificate or a bearer
//! token), one context, with everything embedded so a file works from any namespace and needs
//! no other file. Pure rendering; knows nothing about where the server runs.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// How a kubeconfig's user authenticates.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Credentials<'a> {
    /// A client certificate and its key, both PEM.
    Certificate {
        /// The certificate.
        cert_pem: &'a str,
        /// Its private key.
        key_pem: &'a str,
    },
    /// A bearer token (a service-account token).
    Token(&'a str),
}

/// A kubeconfig for `user` at `server` (an `https://` URL) whose certificate chains to
/// `ca_pem`.
pub(crate) fn render(
    server: &str,
    ca_pem: &str,
    user: &str,
    credentials: Credentials<'_>,
) -> String {
    let user_entry = match credentials {
        Credentials::Certificate { cert_pem, key_pem } => serde_json::json!({
            "client-certificate-data": STANDARD.encode(cert_pem),
            "client-key-data": STANDARD.encode(key_pem),
        }),
        Credentials::Token(token) => serde_json::json!({ "token": token }),
    };
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": "berth-lab",
            "cluster": {
                "server": server,
                "certificate-authority-data": STANDARD.encode(ca_pem),
            },
        }],
        "users": [{ "name": user, "user": user_entry }],
        "contexts": [{
            "name": "berth-lab",
            "context": { "cluster": "berth-lab", "user": user },
        }],
        "current-context": "berth-lab",
        "preferences": {},
    });
    // A JSON value of strings, arrays and maps always serialises.
    serde_yaml::to_string(&config).unwrap_or_else(|_| config.to_string())
}

#[cfg(test)]
mod tests {
    use kube::config::Kubeconfig;

    use super::*;

    #[test]
    fn kube_reads_back_a_certificate_kubeconfig() {
        let text = render(
            "https://127.0.0.1:40000",
            "CA PEM",
            "kubernetes-admin",
            Credentials::Certificate {
                cert_pem: "CERT PEM",
                key_pem: "KEY PEM",
            },
        );
        let config = Kubeconfig::from_yaml(&text).expect("kubeconfig");
        assert_eq!(config.current_context.as_deref(), Some("berth-lab"));
        let cluster = config.clusters[0].cluster.as_ref().expect("cluster");
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:40000"));
        assert_eq!(
            cluster.certificate_authority_data.as_deref(),
            Some(STANDARD.encode("CA PEM").as_str())
        );
        let user = config.auth_infos[0].auth_info.as_ref().expect("user");
        assert_eq!(config.auth_infos[0].name, "kubernetes-admin");
        assert_eq!(
            user.client_certificate_data.as_deref(),
            Some(STANDARD.encode("CERT PEM").as_str())
        );
        assert!(user.token.is_none());
    }

    #[test]
    fn kube_reads_back_a_token_kubeconfig() {
        let text = render(
            "https://[fd00::1]:6443",
            "CA",
            "system:serviceaccount:a:b",
            Credentials::Token("t0k3n"),
        );
        let config = Kubeconfig::from_yaml(&text).expect("kubeconfig");
        let user = config.auth_infos[0].auth_info.as_ref().expect("user");
        assert!(user.token.is_some());
        assert!(user.client_certificate_data.is_none());
        let cluster = config.clusters[0].cluster.as_ref().expect("cluster");
        assert_eq!(cluster.server.as_deref(), Some("https://[fd00::1]:6443"));
    }
}
