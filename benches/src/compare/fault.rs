//! Faults injected on one node's two uplinks (eth1 to tor1, eth2 to tor2), from inside the
//! node's namespace; the management link to the control plane is left alone. This kernel has
//! no `sch_netem` and no `act_gact` (tc's `action drop`), so 100 % loss is iptables DROP
//! rules on both uplinks in both directions: the routers see silence, not a FIN or a carrier
//! change. Link down sets both uplinks down: each router's end loses carrier.

use std::time::Duration;

use testbed::Netns;

/// A fault on a node's uplinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Both uplinks set down (the routers' ends lose carrier).
    LinkDown,
    /// Every packet in and out of both uplinks dropped (iptables), links stay up.
    Loss,
}

impl Fault {
    /// Its name in the results.
    pub fn name(self) -> &'static str {
        match self {
            Fault::LinkDown => "link-down",
            Fault::Loss => "100%-loss",
        }
    }
}

const UPLINKS: [&str; 2] = ["eth1", "eth2"];

/// Injects `fault` on node `n`'s uplinks.
pub fn inject(netns: &Netns, fault: Fault) -> testbed::Result<()> {
    for link in UPLINKS {
        match fault {
            Fault::LinkDown => {
                netns.output("ip", &["link", "set", link, "down"])?;
            }
            Fault::Loss => {
                netns.output("iptables", &["-I", "INPUT", "-i", link, "-j", "DROP"])?;
                netns.output("iptables", &["-I", "OUTPUT", "-o", link, "-j", "DROP"])?;
            }
        }
    }
    Ok(())
}

/// Undoes `fault` on node `n`'s uplinks, restoring the routes link down removed.
pub fn clear(netns: &Netns, fault: Fault, n: usize) -> testbed::Result<()> {
    match fault {
        Fault::LinkDown => {
            for link in UPLINKS {
                netns.output("ip", &["link", "set", link, "up"])?;
            }
            let routes = [
                ["default".to_string(), format!("10.1.{n}.1")],
                ["10.9.2.0/24".to_string(), format!("10.2.{n}.1")],
            ];
            for [to, via] in routes {
                // The gateway is reachable once the link has carrier again.
                let mut tries = 0;
                while let Err(e) = netns.output("ip", &["route", "replace", &to, "via", &via]) {
                    tries += 1;
                    if tries > 50 {
                        return Err(e);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        Fault::Loss => {
            for link in UPLINKS {
                netns.output("iptables", &["-D", "INPUT", "-i", link, "-j", "DROP"])?;
                netns.output("iptables", &["-D", "OUTPUT", "-o", link, "-j", "DROP"])?;
            }
        }
    }
    Ok(())
}
