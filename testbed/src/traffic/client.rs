//! The client side: many short connections (each from a fresh source port) to one address,
//! counting which node answered.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use crate::Result;
use crate::lab::Netns;

/// Which transport to probe with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// One TCP connection per probe; the answer is read until the server closes.
    Tcp,
    /// One datagram per probe from a new socket; the answer is the reply datagram.
    Udp,
}

/// How probes were answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spread {
    /// Answers per node name.
    pub answers: BTreeMap<String, usize>,
    /// Probes that got no answer (refused, reset or timed out).
    pub failures: usize,
}

impl Spread {
    /// Total answered probes.
    pub fn answered(&self) -> usize {
        self.answers.values().sum()
    }

    /// Answers from `node`.
    pub fn count(&self, node: &str) -> usize {
        self.answers.get(node).copied().unwrap_or(0)
    }

    /// Whether every node in `nodes` answered at least `min_share` of all probes (0.0–1.0),
    /// and nobody else answered.
    pub fn fair_over(&self, nodes: &[&str], min_share: f64) -> bool {
        let total = self.answered() + self.failures;
        if total == 0
            || self
                .answers
                .keys()
                .any(|name| !nodes.contains(&name.as_str()))
        {
            return false;
        }
        #[allow(clippy::cast_precision_loss, reason = "probe counts are small")]
        nodes
            .iter()
            .all(|node| self.count(node) as f64 >= min_share * total as f64)
    }
}

/// Sends `probes` probes to `target` from inside `netns`, sequentially, each from a new
/// source port, waiting at most `timeout` for each answer.
pub fn spread(
    netns: &Netns,
    protocol: Protocol,
    target: SocketAddr,
    probes: usize,
    timeout: Duration,
) -> Result<Spread> {
    netns.run(move || {
        let mut spread = Spread::default();
        for _ in 0..probes {
            let answer = match protocol {
                Protocol::Tcp => tcp_probe(target, timeout),
                Protocol::Udp => udp_probe(target, timeout),
            };
            match answer {
                Some(name) if !name.is_empty() => *spread.answers.entry(name).or_default() += 1,
                _ => spread.failures += 1,
            }
        }
        spread
    })
}

fn tcp_probe(target: SocketAddr, timeout: Duration) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&target, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

fn udp_probe(target: SocketAddr, timeout: Duration) -> Option<String> {
    let local: SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).ok()?;
    socket.set_read_timeout(Some(timeout)).ok()?;
    socket.send_to(b"?", target).ok()?;
    let mut buf = [0u8; 1500];
    let (len, _) = socket.recv_from(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..len]).into_owned())
}
