//! The lab's addresses and the announced prefixes, shared by every sender and the receiver.
//!
//! One link joins receiver `r` (10.0.0.1/16) and sender `s` (10.0.0.2/16). Session `i` of a
//! multi-session run joins receiver address 10.0.1.(i+1) and sender address 10.0.2.(i+1):
//! BIRD keeps one session per neighbour address, and the senders tell their sessions apart by
//! the peer's address. gobgpd's feeder sits on a
//! second link (10.2.0.1/24 on `s`, 10.2.0.2/24 on `f`).

use std::net::Ipv4Addr;

/// The sender's AS.
pub const SENDER_AS: u32 = 65001;
/// The receiver's AS.
pub const RECEIVER_AS: u32 = 65000;
/// The gobgp feeder's AS.
pub const FEEDER_AS: u32 = 65002;
/// The sender's address.
pub const SENDER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// gobgpd's address towards its feeder.
pub const SENDER_FEED: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 1);
/// The feeder's address.
pub const FEEDER: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 2);
/// The prefix toggled by the churn scenario.
pub const CHURN_PREFIX: Ipv4Addr = Ipv4Addr::new(100, 127, 0, 1);
/// First announced /32.
const BASE: u32 = u32::from_be_bytes([100, 64, 0, 0]);
/// Address block per session in multi-session runs (routes of session `i` start at
/// `BASE + i * BLOCK`, so a /22 covers one session's 1,000 routes).
pub const BLOCK: u32 = 1024;

/// The receiver's address for session `i` of `sessions`.
pub fn receiver_address(i: usize, sessions: usize) -> Ipv4Addr {
    if sessions <= 1 {
        Ipv4Addr::new(10, 0, 0, 1)
    } else {
        Ipv4Addr::new(10, 0, 1, u8::try_from(i + 1).unwrap_or(u8::MAX))
    }
}

/// The sender's address for session `i` of `sessions`.
pub fn sender_address(i: usize, sessions: usize) -> Ipv4Addr {
    if sessions <= 1 {
        SENDER
    } else {
        Ipv4Addr::new(10, 0, 2, u8::try_from(i + 1).unwrap_or(u8::MAX))
    }
}

/// Every sender address of a run with `sessions` sessions.
pub fn sender_addresses(sessions: usize) -> Vec<Ipv4Addr> {
    (0..sessions.max(1))
        .map(|i| sender_address(i, sessions))
        .collect()
}

/// Every receiver address of a run with `sessions` sessions.
pub fn receiver_addresses(sessions: usize) -> Vec<Ipv4Addr> {
    (0..sessions.max(1))
        .map(|i| receiver_address(i, sessions))
        .collect()
}

/// The `j`-th /32 of session `i`. One session uses consecutive addresses from 100.64.0.0.
pub fn route(i: usize, j: usize, sessions: usize) -> Ipv4Addr {
    let offset = if sessions <= 1 {
        j as u32
    } else {
        i as u32 * BLOCK + j as u32
    };
    Ipv4Addr::from(BASE + offset)
}

/// The block (`address/22`) holding session `i`'s routes in a multi-session run.
pub fn session_block(i: usize) -> (Ipv4Addr, u8) {
    (Ipv4Addr::from(BASE + i as u32 * BLOCK), 22)
}

/// Every /32 of a run: `per_session` routes for each of `sessions` sessions.
pub fn all_routes(sessions: usize, per_session: usize) -> Vec<Ipv4Addr> {
    (0..sessions.max(1))
        .flat_map(|i| (0..per_session).map(move |j| route(i, j, sessions)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_get_disjoint_blocks() {
        assert_eq!(route(0, 0, 1), Ipv4Addr::new(100, 64, 0, 0));
        assert_eq!(route(0, 256, 1), Ipv4Addr::new(100, 64, 1, 0));
        assert_eq!(route(1, 0, 100), Ipv4Addr::new(100, 64, 4, 0));
        assert_eq!(route(1, 999, 100), Ipv4Addr::new(100, 64, 7, 231));
        assert_eq!(receiver_address(99, 100), Ipv4Addr::new(10, 0, 1, 100));
        let all = all_routes(100, 1000);
        let unique: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(unique.len(), 100_000);
    }
}
