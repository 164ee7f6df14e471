//! [`Netns`]: one namespace of a lab, and what can be done inside it — netlink requests,
//! sysctls, threads and processes. Cheap to clone, so drivers and threads can keep one.

use std::fs::File;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use futures::TryStreamExt;
use ipnetwork::IpNetwork;
use netlink_packet_route::address::{AddressAttribute, AddressFlags};
use netlink_packet_route::link::{InfoData, InfoVeth};
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

use super::fib::{self, Fib};
use super::netns;
use super::process::Process;
use crate::{Error, Result};

/// A network namespace of a lab, named `node` in the lab and [`Netns::name`] in the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Netns {
    node: String,
    name: String,
    path: PathBuf,
    dir: PathBuf,
}

impl Netns {
    pub(crate) fn new(node: &str, name: &str, path: PathBuf, dir: PathBuf) -> Self {
        Netns {
            node: node.into(),
            name: name.into(),
            path,
            dir,
        }
    }

    /// A private runtime directory for this node inside the lab's (created on first use,
    /// removed with the lab): configs, sockets and logs of daemons running here.
    pub fn dir(&self) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| Error::io(format!("create {}", self.dir.display()), e))?;
        Ok(self.dir.clone())
    }

    /// The node name within the lab (`r1`).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The kernel (iproute2) name, usable with `ip netns exec`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The nsfs file under `/run/netns`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A command that runs `program` inside this namespace (`ip netns exec NAME program`).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }

    /// Runs `program args` inside the namespace, waits, and returns stdout; fails with the
    /// stderr if it exits non-zero.
    pub fn output(&self, program: &str, args: &[&str]) -> Result<String> {
        let output = self.command(program).args(args).output().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::Missing("the `ip` command (package iproute2)".into())
            } else {
                Error::io(format!("run {program} in {}", self.node), e)
            }
        })?;
        if !output.status.success() {
            return Err(Error::Daemon(format!(
                "`{program} {}` in {} failed ({}): {}",
                args.join(" "),
                self.node,
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Spawns `program args` inside the namespace as a [`Process`] killed on drop.
    pub fn spawn(&self, program: &str, args: &[&str]) -> Result<Process> {
        let mut command = self.command(program);
        command.args(args);
        Process::spawn(format!("{program} in {}", self.node), command)
    }

    /// Runs `f` on a thread inside the namespace and waits for it. Sockets `f` creates belong
    /// to the namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        netns::run_in(&self.path, f)
    }

    /// Starts a long-lived thread inside the namespace.
    pub fn spawn_thread<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<std::thread::JoinHandle<T>> {
        // Opened here so a missing namespace is reported to the caller, not inside the thread.
        let file =
            File::open(&self.path).map_err(|e| Error::io(format!("open {}", self.node), e))?;
        let (entered_tx, entered_rx) = std::sync::mpsc::channel();
        let handle = std::thread::Builder::new()
            .name(format!("netns-{}", self.node))
            .spawn(move || {
                let entered = crate::sys::enter_netns_fd(&file);
                drop(file);
                let failed = entered.is_err();
                let _ = entered_tx.send(entered);
                // Never run `f` in the wrong namespace; the caller already has the error.
                assert!(!failed, "could not enter the namespace");
                f()
            })
            .map_err(|e| Error::io("spawn thread", e))?;
        match entered_rx.recv() {
            Ok(Ok(())) => Ok(handle),
            Ok(Err(err)) => Err(Error::io(format!("enter {}", self.node), err)),
            Err(_) => Err(Error::Daemon("namespace thread died".into())),
        }
    }

    /// Runs an async netlink job with a connection opened inside the namespace.
    pub fn netlink<T: Send>(&self, job: impl AsyncFnOnce(Handle) -> Result<T> + Send) -> Result<T> {
        self.run(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::io("tokio runtime", e))?;
            runtime.block_on(async move {
                let (connection, handle, _) =
                    rtnetlink::new_connection().map_err(|e| Error::io("netlink socket", e))?;
                let task = tokio::spawn(connection);
                let result = job(handle).await;
                task.abort();
                result
            })
        })?
    }

    /// Writes a sysctl of this namespace, e.g. `("net/ipv4/ip_forward", "1")`.
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        self.run(|| std::fs::write(&path, value))?
            .map_err(|e| Error::io(format!("sysctl {key}={value} in {}", self.node), e))
    }

    /// Reads a sysctl of this namespace.
    pub fn read_sysctl(&self, key: &str) -> Result<String> {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        self.run(|| std::fs::read_to_string(&path))?
            .map(|s| s.trim().to_string())
            .map_err(|e| Error::io(format!("read sysctl {key} in {}", self.node), e))
    }

    /// Forwarding for IPv4 and IPv6, and L4 (5-tuple) multipath hashing for both, so ECMP
    /// spreads connections that differ only in source port.
    pub fn enable_routing(&self) -> Result<()> {
        for (key, value) in [
            ("net/ipv4/ip_forward", "1"),
            ("net/ipv6/conf/all/forwarding", "1"),
            ("net/ipv4/fib_multipath_hash_policy", "1"),
            ("net/ipv6/fib_multipath_hash_policy", "1"),
        ] {
            self.sysctl(key, value)?;
        }
        Ok(())
    }

    /// The index of interface `ifname`.
    pub fn link_index(&self, ifname: &str) -> Result<u32> {
        let ifname = ifname.to_string();
        let node = self.node.clone();
        self.netlink(async move |handle| index_of(&handle, &ifname, &node).await)
    }

    /// Names of all interfaces.
    pub fn links(&self) -> Result<Vec<String>> {
        self.netlink(async move |handle| {
            let mut links = handle.link().get().execute();
            let mut names = Vec::new();
            while let Some(link) = links
                .try_next()
                .await
                .map_err(|e| Error::netlink("links", e))?
            {
                for attribute in link.attributes {
                    if let netlink_packet_route::link::LinkAttribute::IfName(name) = attribute {
                        names.push(name);
                    }
                }
            }
            Ok(names)
        })
    }

    /// Sets `ifname` up.
    pub fn set_up(&self, ifname: &str) -> Result<()> {
        let ifname = ifname.to_string();
        let node = self.node.clone();
        self.netlink(async move |handle| {
            let index = index_of(&handle, &ifname, &node).await?;
            handle
                .link()
                .set(LinkUnspec::new_with_index(index).up().build())
                .execute()
                .await
                .map_err(|e| Error::netlink(format!("set {ifname} up in {node}"), e))
        })
    }

    /// Adds `address` (with its prefix length) to `ifname`, without IPv6 duplicate address
    /// detection so the address is usable at once.
    pub fn add_address(&self, ifname: &str, address: IpNetwork) -> Result<()> {
        let ifname = ifname.to_string();
        let node = self.node.clone();
        self.netlink(async move |handle| {
            let index = index_of(&handle, &ifname, &node).await?;
            let mut request = handle.address().add(index, address.ip(), address.prefix());
            request
                .message_mut()
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
            request
                .execute()
                .await
                .map_err(|e| Error::netlink(format!("add {address} to {ifname} in {node}"), e))
        })
    }

    /// Adds a route to `destination` via `gateway`.
    pub fn add_route(&self, destination: IpNetwork, gateway: IpAddr) -> Result<()> {
        let node = self.node.clone();
        self.netlink(async move |handle| {
            let message = RouteMessageBuilder::<IpAddr>::new()
                .destination_prefix(destination.network(), destination.prefix())
                .and_then(|b| b.gateway(gateway))
                .map_err(|e| Error::netlink("route", e))?
                .build();
            handle.route().add(message).execute().await.map_err(|e| {
                Error::netlink(
                    format!("add route {destination} via {gateway} in {node}"),
                    e,
                )
            })
        })
    }

    /// Adds a route to `destination` out of `ifname` (no gateway).
    pub fn add_device_route(&self, destination: IpNetwork, ifname: &str) -> Result<()> {
        let ifname = ifname.to_string();
        let node = self.node.clone();
        self.netlink(async move |handle| {
            let index = index_of(&handle, &ifname, &node).await?;
            let message = RouteMessageBuilder::<IpAddr>::new()
                .destination_prefix(destination.network(), destination.prefix())
                .map_err(|e| Error::netlink("route", e))?
                .output_interface(index)
                .build();
            handle.route().add(message).execute().await.map_err(|e| {
                Error::netlink(format!("add route {destination} dev {ifname} in {node}"), e)
            })
        })
    }

    /// Adds a blackhole route to `destination` (packets to it are dropped silently): cuts a
    /// peer off without closing any socket, the way a dead host looks to its neighbours.
    pub fn add_blackhole_route(&self, destination: IpNetwork) -> Result<()> {
        let node = self.node.clone();
        self.netlink(async move |handle| {
            let message = blackhole(destination)?;
            handle
                .route()
                .add(message)
                .execute()
                .await
                .map_err(|e| Error::netlink(format!("add blackhole {destination} in {node}"), e))
        })
    }

    /// Removes a route added by [`Netns::add_blackhole_route`].
    pub fn remove_blackhole_route(&self, destination: IpNetwork) -> Result<()> {
        let node = self.node.clone();
        self.netlink(async move |handle| {
            let message = blackhole(destination)?;
            handle
                .route()
                .del(message)
                .execute()
                .await
                .map_err(|e| Error::netlink(format!("delete blackhole {destination} in {node}"), e))
        })
    }

    /// The kernel FIB (main table, IPv4 and IPv6).
    pub fn fib(&self) -> Result<Fib> {
        self.netlink(async move |handle| fib::read(&handle).await)
    }

    /// Creates a veth pair: `ifname` here and `peer_ifname` in `peer`, both up.
    pub(crate) fn add_veth(&self, ifname: &str, peer: &Netns, peer_ifname: &str) -> Result<()> {
        let peer_file =
            File::open(&peer.path).map_err(|e| Error::io(format!("open {}", peer.node), e))?;
        let fd = peer_file.as_raw_fd();
        let (name, peer_name) = (ifname.to_string(), peer_ifname.to_string());
        let context = format!(
            "veth {}:{ifname} <-> {}:{peer_ifname}",
            self.node, peer.node
        );
        self.netlink(async move |handle| {
            // No IFF_UP in the create request: the kernel refuses to open one end before the
            // pair is joined (ENOTCONN); both ends are set up afterwards.
            let peer_message = LinkUnspec::new_with_name(&peer_name)
                .setns_by_fd(fd)
                .build();
            let message = LinkVeth::new(&name, &peer_name)
                .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_message)))
                .build();
            handle
                .link()
                .add(message)
                .execute()
                .await
                .map_err(|e| Error::netlink(&context, e))
        })?;
        drop(peer_file);
        self.set_up(ifname)?;
        peer.set_up(peer_ifname)
    }

    /// Creates bridge `ifname` (up).
    pub(crate) fn add_bridge(&self, ifname: &str) -> Result<()> {
        let ifname = ifname.to_string();
        let node = self.node.clone();
        self.netlink(async move |handle| {
            handle
                .link()
                .add(LinkBridge::new(&ifname).up().build())
                .execute()
                .await
                .map_err(|e| Error::netlink(format!("add bridge {ifname} in {node}"), e))
        })
    }

    /// Enslaves `port` to `bridge`.
    pub(crate) fn attach_to_bridge(&self, port: &str, bridge: &str) -> Result<()> {
        let (port, bridge) = (port.to_string(), bridge.to_string());
        let node = self.node.clone();
        self.netlink(async move |handle| {
            let bridge_index = index_of(&handle, &bridge, &node).await?;
            let port_index = index_of(&handle, &port, &node).await?;
            handle
                .link()
                .set(
                    LinkUnspec::new_with_index(port_index)
                        .controller(bridge_index)
                        .up()
                        .build(),
                )
                .execute()
                .await
                .map_err(|e| Error::netlink(format!("attach {port} to {bridge} in {node}"), e))
        })
    }
}

fn blackhole(destination: IpNetwork) -> Result<netlink_packet_route::route::RouteMessage> {
    Ok(RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(destination.network(), destination.prefix())
        .map_err(|e| Error::netlink("route", e))?
        .kind(netlink_packet_route::route::RouteType::BlackHole)
        .build())
}

async fn index_of(handle: &Handle, ifname: &str, node: &str) -> Result<u32> {
    let mut links = handle.link().get().match_name(ifname.to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(link.header.index),
        Ok(None) | Err(_) => Err(Error::Unknown(format!("interface {ifname} in {node}"))),
    }
}
