//! A Berth speaker (the `bgp` library's tokio driver) running inside a node namespace, on a
//! current-thread runtime of its own so every socket it opens belongs to that namespace.

use std::net::{IpAddr, Ipv4Addr};
use std::thread::JoinHandle;
use std::time::Duration;

use bgp::driver::{PeerConfig, PeerSnapshot, Speaker, SpeakerConfig, Target};
use bgp::rib::{Prefix, RouteAttrs};
use bgp::session::{MaxPrefix, State};
use bgp::wire::Family;
use ipnetwork::IpNetwork;
use testbed::Netns;
use tokio::sync::{mpsc, oneshot};

/// One session of a speaker: peer, our address on the link, peer AS, password.
#[derive(Debug, Clone)]
pub struct BerthPeer {
    pub address: IpAddr,
    pub local: IpAddr,
    pub remote_as: u32,
    pub password: Option<String>,
    /// RFC 4486 limit: more received routes end the session (and it stays down).
    pub max_prefix: Option<u64>,
    /// Set the graceful-restart R bit: this speaker is coming back from a restart.
    pub restarting: bool,
}

impl BerthPeer {
    pub fn new(address: IpAddr, local: IpAddr, remote_as: u32) -> Self {
        BerthPeer {
            address,
            local,
            remote_as,
            password: None,
            max_prefix: None,
            restarting: false,
        }
    }

    pub fn password(mut self, password: Option<&str>) -> Self {
        self.password = password.map(Into::into);
        self
    }
}

enum Command {
    Peers(oneshot::Sender<Vec<PeerSnapshot>>),
    Shutdown(oneshot::Sender<()>),
    Crash,
}

/// A running speaker; dropping it shuts it down gracefully (Cease, sessions closed).
pub struct BerthSpeaker {
    commands: mpsc::Sender<Command>,
    thread: Option<JoinHandle<()>>,
}

impl BerthSpeaker {
    /// Starts a speaker in `netns` in `local_as`, with `peers`, announcing each VIP to the peers
    /// of its family with next hop self. Short timers: hold 9 s, connect retry 1 s.
    pub fn start(
        netns: &Netns,
        local_as: u32,
        router_id: Ipv4Addr,
        peers: Vec<BerthPeer>,
        vips: Vec<IpNetwork>,
    ) -> BerthSpeaker {
        let (commands, mut inbox) = mpsc::channel(8);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let thread = netns
            .spawn_thread(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(async move {
                    let speaker =
                        match Speaker::start(SpeakerConfig::new(local_as, router_id)).await {
                            Ok(speaker) => speaker,
                            Err(e) => {
                                let _ = ready_tx.send(Err(e.to_string()));
                                return;
                            }
                        };
                    for peer in &peers {
                        let mut config =
                            PeerConfig::new(peer.address, local_as, peer.remote_as, router_id);
                        config.transport.local = Some(peer.local);
                        config.transport.md5_password.clone_from(&peer.password);
                        config.session.hold_time = 9;
                        config.session.connect_retry = Duration::from_secs(1);
                        config.session.idle_hold = Duration::from_millis(200);
                        config.session.restarting = peer.restarting;
                        config.session.max_prefix = peer.max_prefix.map(|limit| MaxPrefix {
                            limit,
                            restart_after: None,
                        });
                        config.session.families = if peer.address.is_ipv6() {
                            vec![Family::IPV6_UNICAST]
                        } else {
                            vec![Family::IPV4_UNICAST]
                        };
                        if let Err(e) = speaker.add_peer(config) {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                        let prefixes: Vec<Prefix> = vips
                            .iter()
                            .filter(|vip| vip.is_ipv6() == peer.address.is_ipv6())
                            .map(|vip| Prefix::new(vip.ip(), vip.prefix()).expect("prefix"))
                            .collect();
                        speaker
                            .announce(prefixes, RouteAttrs::default(), Target::Peer(peer.address))
                            .await
                            .expect("announce");
                    }
                    let _ = ready_tx.send(Ok(()));
                    while let Some(command) = inbox.recv().await {
                        match command {
                            Command::Peers(reply) => {
                                let _ = reply.send(speaker.peers());
                            }
                            // Sockets close with no NOTIFICATION, as when the process dies.
                            Command::Crash => return,
                            Command::Shutdown(reply) => {
                                speaker.shutdown("testbed", Duration::ZERO).await;
                                let _ = reply.send(());
                                return;
                            }
                        }
                    }
                    speaker.shutdown("testbed", Duration::ZERO).await;
                });
            })
            .expect("speaker thread");
        ready_rx
            .recv()
            .expect("speaker thread ended")
            .expect("speaker start");
        BerthSpeaker {
            commands,
            thread: Some(thread),
        }
    }

    /// Snapshots of every peer.
    pub fn peers(&self) -> Vec<PeerSnapshot> {
        let (tx, rx) = oneshot::channel();
        if self.commands.blocking_send(Command::Peers(tx)).is_err() {
            return Vec::new();
        }
        rx.blocking_recv().unwrap_or_default()
    }

    /// How many sessions are Established.
    pub fn established(&self) -> usize {
        self.peers()
            .iter()
            .filter(|p| p.state == State::Established)
            .count()
    }

    /// Waits until `count` sessions are Established.
    pub fn wait_established(&self, count: usize, timeout: Duration) {
        testbed::wait::until(
            &format!("{count} Berth sessions established"),
            timeout,
            || Ok((self.established() >= count).then_some(())),
        )
        .unwrap_or_else(|e| panic!("{e}: {:?}", self.peers()));
    }

    /// Stops at once without a NOTIFICATION (a crash: graceful restart applies).
    pub fn crash(mut self) {
        let _ = self.commands.blocking_send(Command::Crash);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Graceful shutdown (Cease to every peer), waiting for it to finish.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.blocking_send(Command::Shutdown(tx)).is_ok() {
            let _ = rx.blocking_recv();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for BerthSpeaker {
    fn drop(&mut self) {
        self.stop();
    }
}
