//! What a router reports, the same for every daemon.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnetwork::IpNetwork;

/// RFC 4271 §8 session states, plus what a daemon reports that is none of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionState {
    /// Idle.
    Idle,
    /// Connect.
    Connect,
    /// Active.
    Active,
    /// OpenSent.
    OpenSent,
    /// OpenConfirm.
    OpenConfirm,
    /// Established.
    Established,
    /// Anything else the daemon said (disabled, down, …).
    Other(String),
}

impl SessionState {
    /// Parses a daemon's spelling of a state (case-insensitive, `Open Sent` or `OpenSent`).
    pub fn parse(text: &str) -> SessionState {
        let key: String = text
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_lowercase();
        match key.as_str() {
            "idle" => SessionState::Idle,
            "connect" => SessionState::Connect,
            "active" => SessionState::Active,
            "opensent" => SessionState::OpenSent,
            "openconfirm" => SessionState::OpenConfirm,
            "established" => SessionState::Established,
            _ => SessionState::Other(text.to_string()),
        }
    }
}

/// One BGP session as the router sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The daemon's name for it (BIRD protocol name; the peer address elsewhere).
    pub name: String,
    /// The peer's address, when known.
    pub peer: Option<IpAddr>,
    /// Session state.
    pub state: SessionState,
    /// Prefixes received and accepted, all address families together.
    pub prefixes_received: u64,
}

/// The router's BGP table: every valid path's next hop, per prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BgpTable {
    /// Prefix → next hops.
    pub routes: BTreeMap<IpNetwork, BTreeSet<IpAddr>>,
}

impl BgpTable {
    /// The next hops of `prefix` (empty if absent).
    pub fn next_hops(&self, prefix: IpNetwork) -> BTreeSet<IpAddr> {
        self.routes.get(&prefix).cloned().unwrap_or_default()
    }

    /// Records a path.
    pub(crate) fn add(&mut self, prefix: IpNetwork, next_hop: Option<IpAddr>) {
        let hops = self.routes.entry(prefix).or_default();
        if let Some(hop) = next_hop {
            hops.insert(hop);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_parse_from_every_spelling() {
        assert_eq!(
            SessionState::parse("Established"),
            SessionState::Established
        );
        assert_eq!(
            SessionState::parse("OPEN_CONFIRM"),
            SessionState::OpenConfirm
        );
        assert_eq!(SessionState::parse("Open Sent"), SessionState::OpenSent);
        assert_eq!(
            SessionState::parse("down"),
            SessionState::Other("down".into())
        );
    }
}
