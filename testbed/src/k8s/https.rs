//! A blocking HTTPS GET with a client certificate, enough to probe `/readyz` without a client
//! library or a runtime. HTTP/1.0, so the server answers without chunking and closes. Knows
//! nothing about Kubernetes beyond that it speaks HTTPS.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::pki::Identity;
use crate::{Error, Result};

/// A TLS client configuration: trust `ca`, present `client`.
pub(crate) fn client_config(ca_der: &[u8], client: &Identity) -> Result<Arc<ClientConfig>> {
    let tls = |e: rustls::Error| Error::Daemon(format!("TLS configuration: {e}"));
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca_der.to_vec()))
        .map_err(tls)?;
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(tls)?
            .with_root_certificates(roots)
            .with_client_auth_cert(
                vec![CertificateDer::from(client.cert_der.clone())],
                PrivatePkcs8KeyDer::from(client.key_der.clone()).into(),
            )
            .map_err(tls)?;
    Ok(Arc::new(config))
}

/// `GET path` from `addr`, verifying the server certificate for `addr`'s IP; returns the status
/// code and the body.
pub(crate) fn get(
    config: &Arc<ClientConfig>,
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<(u16, String)> {
    let context = format!("GET https://{addr}{path}");
    let io = |e: std::io::Error| match e.kind() {
        // What a read or write timeout looks like on Linux.
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Error::Timeout {
            what: format!("an answer to {context}"),
            seconds: timeout.as_secs_f64(),
        },
        _ => Error::io(&context, e),
    };
    let socket = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    socket.set_read_timeout(Some(timeout)).map_err(io)?;
    socket.set_write_timeout(Some(timeout)).map_err(io)?;
    let name = ServerName::IpAddress(addr.ip().into());
    let connection = ClientConnection::new(config.clone(), name)
        .map_err(|e| Error::Daemon(format!("{context}: {e}")))?;
    let mut stream = StreamOwned::new(connection, socket);
    let host = addr.ip();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: berth-testbed\r\nAccept: */*\r\n\r\n"
    )
    .map_err(io)?;
    stream.flush().map_err(io)?;
    let mut reply = Vec::new();
    match stream.read_to_end(&mut reply) {
        Ok(_) => {}
        // Servers may close without TLS close_notify once the whole answer is out.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !reply.is_empty() => {}
        Err(e) => return Err(io(e)),
    }
    parse_reply(&String::from_utf8_lossy(&reply))
        .ok_or_else(|| Error::parse(context, "not an HTTP reply"))
}

/// The status code and body of an HTTP/1.x reply.
fn parse_reply(reply: &str) -> Option<(u16, String)> {
    let (head, body) = reply.split_once("\r\n\r\n")?;
    let status = head
        .lines()
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((status, body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_status_and_body() {
        assert_eq!(
            parse_reply("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nok"),
            Some((200, "ok".to_string()))
        );
        assert_eq!(
            parse_reply("HTTP/1.1 500 Internal Server Error\r\n\r\n[-]etcd failed\n"),
            Some((500, "[-]etcd failed\n".to_string()))
        );
        assert_eq!(parse_reply("garbage"), None);
        assert_eq!(parse_reply(""), None);
    }
}
