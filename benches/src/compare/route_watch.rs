//! One VIP's next hops in the routers' kernel FIBs: read through rtnetlink inside each
//! router's namespace, polled until a gateway has left (or come back to) the route.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ipnetwork::IpNetwork;
use testbed::Netns;

use crate::whole::probe::now_ns;

/// The gateways of the route to `prefix` in `netns`'s FIB (empty without one).
pub fn gateways(netns: &Netns, prefix: IpNetwork) -> BTreeSet<IpAddr> {
    netns
        .fib()
        .map(|fib| fib.gateways(prefix))
        .unwrap_or_default()
}

/// Polls every `period` until, in every router `routers[i]`, `gateway[i]` is in the route to
/// `prefix` (`present`) or not (`!present`); returns when each router first got there (ns
/// since the epoch), `None` for a router that did not within `timeout`.
pub fn wait_gateway(
    routers: &[&Netns],
    prefix: IpNetwork,
    gateway: &[IpAddr],
    present: bool,
    period: Duration,
    timeout: Duration,
) -> Vec<Option<u64>> {
    let deadline = Instant::now() + timeout;
    let mut seen: Vec<Option<u64>> = vec![None; routers.len()];
    while Instant::now() < deadline && seen.iter().any(Option::is_none) {
        for (i, router) in routers.iter().enumerate() {
            if seen[i].is_none() && gateways(router, prefix).contains(&gateway[i]) == present {
                seen[i] = Some(now_ns());
            }
        }
        std::thread::sleep(period);
    }
    seen
}

/// One router's view of a next hop during an observation window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outage {
    /// When the gateway first left the route (ns since the epoch), if it did.
    pub gone: Option<u64>,
    /// When it was first back after leaving, if it left and came back.
    pub back: Option<u64>,
}

/// Watches `prefix`'s route in every router for `window` (polling every `period`): whether
/// and when `gateway[i]` left router `i`'s route and came back. Ends early once every router
/// has seen its gateway leave and come back.
pub fn observe_outage(
    routers: &[&Netns],
    prefix: IpNetwork,
    gateway: &[IpAddr],
    period: Duration,
    window: Duration,
) -> Vec<Outage> {
    let deadline = Instant::now() + window;
    let mut seen = vec![Outage::default(); routers.len()];
    while Instant::now() < deadline && seen.iter().any(|o| o.back.is_none()) {
        for (i, router) in routers.iter().enumerate() {
            let present = gateways(router, prefix).contains(&gateway[i]);
            let o = &mut seen[i];
            if o.gone.is_none() && !present {
                o.gone = Some(now_ns());
            } else if o.gone.is_some() && o.back.is_none() && present {
                o.back = Some(now_ns());
            }
        }
        std::thread::sleep(period);
    }
    seen
}
