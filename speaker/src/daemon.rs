//! The speaker's main loop: each new cluster state → `desired` → `Applier::apply` (only
//! the difference) → VIPs on the local device, with the result published for the HTTP
//! surfaces. On shutdown: graceful shutdown of every session, then the VIPs come off; or,
//! for a restart, sessions closed as they are and a restart marker left for the successor.
//!
//! Beside BGP, the layer-2 edge (`crate::layer2::edge`) gets the same decision's layer-2
//! part (`Desired.layer2`): BGP pools' VIPs go to the BGP applier, layer2 pools' to it. On
//! shutdown it steps down first (its standbys take over while it still answers).

use std::collections::BTreeSet;
use std::future::Future;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tracing::{info, warn};

use crate::admin::View;
use crate::desired::{Desired, NodeContext, desired_after};
use crate::layer2::edge::{self as layer2, Layer2Edge};
use crate::netlink::VipDevice;
use crate::restart_marker::{self, Marker};
use crate::source::StateReceiver;
use crate::sync::{Applier, Network};

/// How often the desired state is applied again without a change of the cluster state.
pub const RESYNC_INTERVAL: Duration = Duration::from_secs(30);

/// How the daemon runs.
pub struct Options {
    /// Who decides.
    pub ctx: NodeContext,
    /// Overrides `BgpConf.spec.listenPort`.
    pub listen_port: Option<u16>,
    /// Put announced VIPs on this dummy device.
    pub vip_interface: Option<String>,
    /// How long routes stay marked GRACEFUL_SHUTDOWN before sessions close.
    pub drain: Duration,
    /// What SIGTERM means.
    pub on_shutdown: ShutdownMode,
    /// The network the BGP driver uses.
    pub network: Network,
    /// This start follows a restart of the speaker: the sessions configured at start send
    /// the graceful-restart R bit (see [`Applier::restarting`]), whatever the marker says.
    pub restarting: bool,
    /// The restart marker (see [`restart_marker`]): read and removed at start (a young one
    /// makes this start a restart), written by a [`ShutdownMode::Restart`] stop. `None`:
    /// neither.
    pub restart_marker: Option<PathBuf>,
    /// The layer-2 edge; `None` runs none (layer2 pools are then not answered).
    pub layer2: Option<layer2::Options>,
}

/// What the speaker does with its sessions when told to stop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ShutdownMode {
    /// The node leaves: routes re-announced with GRACEFUL_SHUTDOWN for the drain time, then
    /// withdrawn with the sessions (RFC 8326, hard reset).
    #[default]
    Drain,
    /// The speaker restarts (a rolling update): sessions close without withdrawing, so
    /// routers that negotiated graceful restart keep forwarding to this node until the new
    /// speaker re-announces (RFC 4724 / RFC 8538). No next hop set changes, so no ECMP
    /// flow is rehashed.
    Restart,
}

/// The daemon's state shared with the HTTP surfaces.
#[derive(Default)]
pub struct Shared {
    view: Mutex<View>,
}

impl Shared {
    /// Locks the view.
    pub fn view(&self) -> MutexGuard<'_, View> {
        // A poisoned lock means a panic elsewhere; the view is still readable.
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs until `shutdown` resolves or the source ends, then shuts BGP down gracefully.
pub async fn run(
    options: Options,
    mut states: StateReceiver,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) {
    shared.view().node = options.ctx.node_name.clone();
    let mut applier = Applier::new(options.network.clone(), options.listen_port);
    let marked = options
        .restart_marker
        .as_deref()
        .is_some_and(|path| marked_restart(path, &options.ctx.node_name, options.restarting));
    if options.restarting || marked {
        applier = applier.restarting();
    }
    let mut device = match &options.vip_interface {
        None => None,
        Some(name) => match VipDevice::open(name).await {
            Ok(d) => Some(d),
            Err(e) => {
                warn!("VIPs will not be put on {name}: {e}");
                None
            }
        },
    };
    let edge = options.layer2.clone().map(Layer2Edge::start);
    if let Some(e) = &edge {
        shared.view().layer2 = Some(e.watch());
    }
    tokio::pin!(shutdown);
    loop {
        let feed = states.borrow_and_update().clone();
        let api_reachable = feed.error.is_none();
        shared.view().source_error = feed.error;
        if let Some(state) = feed.state {
            let started = Instant::now();
            // A duplicate BgpPeer never takes a session from the one running it.
            let running = shared
                .view()
                .desired
                .as_ref()
                .map(Desired::peer_names)
                .unwrap_or_default();
            let want = desired_after(&options.ctx, &state, &running);
            for p in &want.problems {
                warn!(kind = %p.kind, name = %p.name, "skipped: {}", p.message);
            }
            let result = applier.apply(&want).await;
            if let Some(e) = &edge {
                e.set(layer2::Input {
                    // Less the nodes that reported no interface for a pool (Kubernetes mode).
                    plan: crate::status::layer2::without_unresolved(
                        want.layer2.clone(),
                        &state.eips,
                    ),
                    api_reachable,
                });
            }
            if let Some(d) = device.as_mut() {
                let mut vips: BTreeSet<IpAddr> = want.announce.keys().copied().collect();
                // Layer-2 addresses go on every candidate, as kube-proxy's IPVS does: the
                // node accepts the traffic the owner's ARP/NDP answers draw, and a takeover
                // changes nothing here.
                vips.extend(
                    want.layer2
                        .vips
                        .iter()
                        .filter(|(_, v)| v.candidates.contains(&options.ctx.node_name))
                        .map(|(ip, _)| *ip),
                );
                d.sync(&vips).await;
            }
            let took = started.elapsed();
            let mut view = shared.view();
            match result {
                Ok(plan) => {
                    if !plan.is_empty() {
                        info!(
                            added = plan.add.len(),
                            removed = plan.remove.len(),
                            reset = plan.reset.len(),
                            updated = plan.update.len(),
                            routes = plan.route_changes(),
                            micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
                            "synced"
                        );
                    }
                    view.route_changes += plan.route_changes() as u64;
                    view.ready = true;
                }
                Err(e) => warn!("BGP speaker could not start: {e}"),
            }
            view.syncs += 1;
            view.last_sync = took;
            view.sync_total += took;
            view.running = applier.running().clone();
            view.speaker = applier.speaker().cloned();
            view.bfd = applier.bfd().bfd().cloned();
            view.desired = Some(want);
        }
        tokio::select! {
            changed = states.changed() => {
                if changed.is_err() {
                    info!("state source ended");
                    break;
                }
            }
            () = &mut shutdown => {
                info!("shutting down");
                break;
            }
            // Steps that failed (a socket option, a driver error) are retried even when
            // the cluster state does not change.
            () = tokio::time::sleep(RESYNC_INTERVAL) => {}
        }
    }
    shared.view().ready = false;
    if let Some(e) = edge {
        e.step_down().await;
        info!("layer 2 stepped down");
    }
    match options.on_shutdown {
        ShutdownMode::Drain => {
            applier
                .shutdown("berth-speaker shutting down", options.drain)
                .await;
            if let Some(d) = device.as_mut() {
                d.sync(&BTreeSet::new()).await;
            }
        }
        // The VIPs stay on the device too: the node keeps answering while routers keep
        // its routes for the restart time.
        ShutdownMode::Restart => {
            // What the routers were told, before closing forgets it.
            let restart_time = applier
                .running()
                .peers
                .values()
                .filter_map(|p| p.graceful_restart)
                .max();
            applier.close("berth-speaker restarting").await;
            if let Some(path) = &options.restart_marker {
                leave_marker(path, &options.ctx.node_name, restart_time);
            }
        }
    }
    info!("BGP sessions closed");
}

/// Takes the restart marker at `path`: whether it makes this start a restart. Logged
/// either way; never fails.
fn marked_restart(path: &Path, node: &str, explicit: bool) -> bool {
    let Some((decision, removal)) = restart_marker::take(path, node, SystemTime::now()) else {
        return false;
    };
    let path = path.display();
    if let Some(e) = removal {
        warn!(path = %path, "could not remove the restart marker: {e}");
    }
    use restart_marker::Decision::{Restarted, Stale};
    if explicit {
        info!(path = %path, "--restarting given, the marker is not needed (it said: {decision})");
    } else if matches!(decision, Restarted { .. } | Stale { .. }) {
        info!(path = %path, "{decision}");
    } else {
        // Not written by a speaker of this node, or not whole: worth a look.
        warn!(path = %path, "{decision}");
    }
    decision.restarting()
}

/// Leaves the restart marker for the next start on this node, if any session advertised
/// graceful restart (without it, routers keep nothing and the R bit would mean nothing).
fn leave_marker(path: &Path, node: &str, restart_time: Option<u16>) {
    let Some(secs) = restart_time.filter(|&t| t > 0) else {
        info!("no session advertised graceful restart: no restart marker left");
        return;
    };
    let marker = Marker::new(node, SystemTime::now(), secs);
    match restart_marker::leave(path, &marker) {
        Ok(()) => info!(
            path = %path.display(),
            restart_time = secs,
            "restart marker left for the next start"
        ),
        Err(e) => warn!(
            path = %path.display(),
            "could not leave the restart marker (the next start will not send the R bit): {e}"
        ),
    }
}
