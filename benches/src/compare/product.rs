//! The products compared and what the benchmark holds of a running one: its controller (if it
//! has one), one speaker per node, its version and the settings it runs with. Starting each
//! product lives in its own module (`berth`, `metallb`, `kubevip`); the scenarios only use
//! what is here.

use serde_json::Value;
use testbed::incluster::Daemon;

/// A load balancer under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Product {
    /// Berth (this repository).
    Berth,
    /// MetalLB, native BGP mode.
    MetalLb,
    /// kube-vip, BGP mode (GoBGP), Services only.
    KubeVip,
}

impl Product {
    /// The name used on the command line and in the results.
    pub fn name(self) -> &'static str {
        match self {
            Product::Berth => "berth",
            Product::MetalLb => "metallb",
            Product::KubeVip => "kube-vip",
        }
    }

    /// Parses a name of [`Product::name`].
    pub fn parse(text: &str) -> Option<Product> {
        [Product::Berth, Product::MetalLb, Product::KubeVip]
            .into_iter()
            .find(|p| p.name() == text)
    }
}

/// A product running in a lab.
pub struct Running {
    /// Which product.
    pub product: Product,
    /// Its version.
    pub version: String,
    /// How it is configured (recorded with every result).
    pub settings: Value,
    /// Its controller (IP allocation), if it has one.
    pub controller: Option<Daemon>,
    /// Its speaker on node1..node3, in node order.
    pub speakers: Vec<Daemon>,
}

impl Running {
    /// Every daemon's pid with a label (`controller`, `speaker-node1`, …).
    pub fn pids(&self) -> Vec<(String, u32)> {
        let mut pids: Vec<(String, u32)> = self
            .controller
            .iter()
            .map(|c| ("controller".to_string(), c.pid()))
            .collect();
        for (i, s) in self.speakers.iter().enumerate() {
            pids.push((format!("speaker-node{}", i + 1), s.pid()));
        }
        pids
    }

    /// The last lines of every daemon's log, for failure messages.
    pub fn log_tails(&self) -> String {
        self.controller
            .iter()
            .chain(self.speakers.iter())
            .map(Daemon::log_tail)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in [Product::Berth, Product::MetalLb, Product::KubeVip] {
            assert_eq!(Product::parse(p.name()), Some(p));
        }
        assert_eq!(Product::parse("openelb"), None);
    }
}
