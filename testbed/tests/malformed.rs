//! Malformed messages from a raw BGP peer: the speaker answers as RFC 4271 and RFC 7606 say,
//! stays up where treat-as-withdraw or attribute discard applies, and never crashes.
//!
//! Why a raw peer: router daemons (BIRD, FRR, GoBGP) never send malformed messages, and
//! ExaBGP 4.2 can only add odd path attributes to otherwise valid UPDATEs (the interop suite
//! covers those). A bad marker, a length field that lies, a /33 in the NLRI field or a
//! duplicate MP_REACH_NLRI need a peer that writes exactly the bytes the test spells out:
//! [`testbed::router::raw`]. Its parser is hand-written and shares nothing with Berth's
//! codec, so the assertions do not depend on the code under test.
//!
//! Lab: a router namespace `r` holding the raw peer (listening on port 179 over IPv4 and
//! IPv6) and a node `n1` running `berth-speaker` (the real binary, see `common/berth.rs`)
//! with one session per family, announcing one VIP per family. Every case gets a fresh
//! session: the raw peer accepts the speaker's next connection, completes OPEN/KEEPALIVE
//! (4-octet AS, multiprotocol IPv4 and IPv6 unicast, route refresh), and sends one
//! hand-written message. Then, by outcome class:
//!
//! - **Session reset**: the exact NOTIFICATION (code, subcode, and data where the RFC
//!   specifies it) arrives, and the speaker closes the connection after it.
//! - **Treat-as-withdraw** (RFC 7606 §2): the peer first announces A and B with valid
//!   attributes, then the malformed UPDATE announces A and C. No NOTIFICATION arrives; a
//!   ROUTE-REFRESH is answered with the speaker's VIP (the session works and every message
//!   before it was processed); the speaker then holds exactly one route from the peer, B
//!   (its admin API's received-prefix count): A was withdrawn and C never taken.
//! - **Attribute discard** (RFC 7606 §2), and what RFC 4271 §4.3 / §5 and RFC 7606 §3 c
//!   say to accept or ignore (Extended Length on a short attribute, unused flag bits, the
//!   Partial bit, unknown optional attributes, LOCAL_PREF over eBGP, and a malformed
//!   LOCAL_PREF, ORIGINATOR_ID or CLUSTER_LIST from this external peer, which RFC 7606 §7.5,
//!   §7.9 and §7.10 discard rather than withdraw): the same exchange ends with A, B and C held.
//!
//! Beyond UPDATEs, the reset class also covers ROUTE-REFRESH of a bad length (RFC 7313 §5)
//! and an OPEN in Established (RFC 6608 §4). The cases found two bugs, fixed in the `bgp`
//! driver with unit tests of their own: a header claiming more than 4,096 octets without
//! extended messages waited for the hold timer instead of 1/2, and a malformed
//! NOTIFICATION was answered with a NOTIFICATION.
//!
//! After all cases of a class, both sessions come up again and answer a ROUTE-REFRESH, and
//! the speaker still runs.
//!
//! The cases themselves, byte by byte with the section each proves, are in
//! `malformed/cases.rs`. Which case stands for which rule (RFC 4271 §6.3 error → RFC 7606
//! outcome):
//!
//! | RFC 4271 error (code/subcode) | RFC 7606 | case class |
//! |---|---|---|
//! | §6.1 marker, length, type (1/1, 1/2, 1/3) | unchanged | reset |
//! | §6.4 error in a NOTIFICATION | not reported: the connection closes | reset, no NOTIFICATION |
//! | Withdrawn Routes / Total Attribute Length overrun (3/1) | unchanged: NLRI not locatable | reset |
//! | attribute overruns the attribute list (3/1) | §4 | withdraw |
//! | attribute twice (3/1) | §3 g: MP_REACH/MP_UNREACH reset 3/1, others discard | both |
//! | unrecognized well-known attribute (3/2) | unchanged | reset |
//! | missing well-known attribute (3/3) | §3 d | withdraw |
//! | attribute flags (3/4) | §3 c | withdraw |
//! | attribute length (3/5) | §7.x per attribute | withdraw / discard |
//! | invalid ORIGIN (3/6) | §7.1 | withdraw |
//! | invalid NEXT_HOP (3/8) | §7.3 | withdraw |
//! | optional attribute error (3/9) | §7.8, §7.14 withdraw; §7.11, §7.12 (RFC 4760 §7) reset 3/9; RFC 6793 §6 discard | all |
//! | invalid network field (3/10) | §5.3 | reset |
//! | malformed AS_PATH (3/11) | §7.2 | withdraw |
//!
//! RFC 7606 also allows "AFI/SAFI disable" instead of a reset for MP_REACH_NLRI and
//! MP_UNREACH_NLRI errors; Berth does not implement it and resets, which the RFC permits.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

#[path = "malformed/cases.rs"]
mod cases;
mod common;

use std::time::Duration;

use cases::{A, B, Family, ResetCase, SurvivedCase, announce, valid};
use common::berth::{BerthPeer, BerthSpeaker};
use common::{NODE_AS, ROUTER_AS, SESSION_TIMEOUT, vip4, vip6};
use ipnetwork::IpNetwork;
use testbed::Lab;
use testbed::router::raw::{
    self, RawConnection, RawListener, RawMessage, RawNotification, RawOpen,
};

/// How long one answer of the speaker may take (generous: the machine is shared).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

/// A router namespace with the raw peer's listeners and a node running a Berth speaker.
/// Fields drop in order: the speaker first, the namespaces last.
struct MalformedLab {
    speaker: BerthSpeaker,
    v4: RawListener,
    v6: RawListener,
    _lab: Lab,
}

impl MalformedLab {
    fn new(label: &str) -> MalformedLab {
        let mut lab = Lab::new(label).unwrap_or_else(|e| panic!("lab needs root: {e}"));
        lab.add_namespace("r").unwrap();
        lab.add_namespace("n1").unwrap();
        lab.link(("r", "eth1"), ("n1", "eth0")).unwrap();
        for family in [Family::V4, Family::V6] {
            let len = if family == Family::V4 { 24 } else { 64 };
            lab.add_address("r", "eth1", IpNetwork::new(family.router(), len).unwrap())
                .unwrap();
            lab.add_address("n1", "eth0", IpNetwork::new(family.node(), len).unwrap())
                .unwrap();
        }
        // Listening before the speaker starts, so its first connection finds us.
        let r = lab.netns("r").unwrap();
        let v4 = RawListener::bind(r, Family::V4.router()).unwrap();
        let v6 = RawListener::bind(r, Family::V6.router()).unwrap();
        let speaker = BerthSpeaker::start(
            lab.netns("n1").unwrap(),
            NODE_AS,
            "10.255.1.1".parse().unwrap(),
            [Family::V4, Family::V6]
                .into_iter()
                // A limit far above what the cases send, so that the speaker counts the
                // routes it holds exactly (without one it keeps only NLRI counters).
                .map(|f| BerthPeer::new(f.router(), f.node(), ROUTER_AS).max_prefix(10_000))
                .collect(),
            vec![vip4(), vip6()],
        );
        MalformedLab {
            speaker,
            v4,
            v6,
            _lab: lab,
        }
    }

    fn listener(&self, family: Family) -> &RawListener {
        match family {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        }
    }

    /// A fresh session of `family`: the speaker's next connection, OPEN/KEEPALIVE done,
    /// and its first announcement (the VIP) read, so every later VIP UPDATE answers one
    /// ROUTE-REFRESH of ours.
    fn session(&self, family: Family) -> RawConnection {
        let open = RawOpen::new(ROUTER_AS, "10.255.0.1".parse().unwrap());
        let mut connection = self
            .listener(family)
            .accept_session(&open, SESSION_TIMEOUT)
            .unwrap_or_else(|e| {
                panic!(
                    "the speaker did not come back on {family:?}: {e}; peers {:?}\n{}",
                    self.speaker.peers(),
                    self.speaker.log_tail()
                )
            });
        connection
            .recv_until("the VIP after Established", ANSWER_TIMEOUT, |m| {
                announces(m, family.vip()).then_some(())
            })
            .unwrap();
        connection
    }

    /// Routes the speaker holds from the `family` peer (none while it is down: the expected
    /// counts are never 0).
    fn received(&self, family: Family) -> Option<u64> {
        self.speaker
            .peers()
            .into_iter()
            .find(|p| p.address == family.router())
            .and_then(|p| p.prefixes_received_total())
    }

    /// Waits until the speaker holds `count` routes from the `family` peer.
    fn wait_received(&self, family: Family, count: u64) -> Result<(), String> {
        testbed::wait::until(
            &format!("{count} routes held from the {family:?} peer"),
            ANSWER_TIMEOUT,
            || Ok((self.received(family) == Some(count)).then_some(())),
        )
        .map_err(|e| format!("{e}; peers {:?}", self.speaker.peers()))
    }

    /// After all cases: both sessions come up and work, and the speaker still runs.
    fn assert_speaker_still_serves(&mut self) {
        let mut sessions: Vec<_> = [Family::V4, Family::V6]
            .into_iter()
            .map(|f| (f, self.session(f)))
            .collect();
        self.speaker.wait_established(2, SESSION_TIMEOUT);
        for (family, connection) in &mut sessions {
            refresh_answered(connection, *family).unwrap();
        }
        assert!(
            self.speaker.alive(),
            "the speaker process exited\n{}",
            self.speaker.log_tail()
        );
        assert_eq!(self.speaker.peers().len(), 2, "its admin API answers");
        assert_eq!(self.speaker.established(), 2);
    }
}

/// Whether `m` is an UPDATE announcing `prefix`.
fn announces(m: &RawMessage, prefix: IpNetwork) -> bool {
    matches!(m, RawMessage::Update { body } if raw::announced(body).contains(&prefix))
}

/// Sends a ROUTE-REFRESH and waits for the VIP it brings back; a NOTIFICATION or a closed
/// connection first is the failure. Messages are handled in order, so the answer also
/// proves that everything sent before the ROUTE-REFRESH was processed.
fn refresh_answered(connection: &mut RawConnection, family: Family) -> Result<(), String> {
    connection
        .send(&raw::route_refresh(family.afi(), 1))
        .map_err(|e| e.to_string())?;
    connection
        .recv_until("the VIP after ROUTE-REFRESH", ANSWER_TIMEOUT, |m| match m {
            RawMessage::Notification(n) => Some(Err(format!("NOTIFICATION {n:?}"))),
            m if announces(m, family.vip()) => Some(Ok(())),
            _ => None,
        })
        .map_err(|e| e.to_string())?
}

/// Runs one reset case on a fresh session; `Err` names what went wrong.
fn run_reset(lab: &MalformedLab, case: &ResetCase) -> Result<(), String> {
    let mut connection = lab.session(case.family);
    connection.send(&case.message).map_err(|e| e.to_string())?;
    let Some((code, subcode, data)) = case.expect.clone() else {
        let before_close = connection
            .recv_until_closed(ANSWER_TIMEOUT)
            .map_err(|e| e.to_string())?;
        return match before_close
            .iter()
            .find(|m| matches!(m, RawMessage::Notification(_)))
        {
            Some(n) => Err(format!("answered with {n:?}")),
            None => Ok(()),
        };
    };
    let got = connection
        .recv_until("a NOTIFICATION", ANSWER_TIMEOUT, |m| match m {
            RawMessage::Notification(n) => Some(n.clone()),
            _ => None,
        })
        .map_err(|e| e.to_string())?;
    let want = RawNotification {
        code,
        subcode,
        data,
    };
    if got != want {
        return Err(format!("NOTIFICATION {got:?}, want {want:?}"));
    }
    let after = connection
        .recv_until_closed(ANSWER_TIMEOUT)
        .map_err(|e| format!("connection not closed after the NOTIFICATION: {e}"))?;
    if !after.is_empty() {
        return Err(format!("messages after the NOTIFICATION: {after:?}"));
    }
    Ok(())
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn errors_that_rfc_7606_leaves_fatal_get_the_exact_notification_and_a_closed_connection() {
    let mut lab = MalformedLab::new("malformed-reset");
    let table = cases::reset_cases();
    let failures: Vec<String> = table
        .iter()
        .filter_map(|case| {
            run_reset(&lab, case)
                .err()
                .map(|e| format!("{}: {e}", case.what))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        table.len(),
        failures.join("\n")
    );
    lab.assert_speaker_still_serves();
}

/// Runs one survived case on a fresh session: A and B valid, then the malformed UPDATE
/// (A and C), then a ROUTE-REFRESH. Checks no NOTIFICATION came and the speaker holds
/// `held` routes from the peer (1: B only, A withdrawn; 3: A, B and C).
fn run_survived(lab: &MalformedLab, case: &SurvivedCase, held: u64) -> Result<(), String> {
    let family = case.family;
    let mut connection = lab.session(family);
    connection
        .send(&announce(family, &valid(family), &[A, B]))
        .map_err(|e| e.to_string())?;
    refresh_answered(&mut connection, family).map_err(|e| format!("before: {e}"))?;
    lab.wait_received(family, 2)
        .map_err(|e| format!("before: {e}"))?;
    connection.send(&case.message).map_err(|e| e.to_string())?;
    refresh_answered(&mut connection, family).map_err(|e| format!("after: {e}"))?;
    lab.wait_received(family, held)?;
    connection.close();
    Ok(())
}

fn run_survived_cases(label: &str, cases: Vec<SurvivedCase>, held: u64) {
    let mut lab = MalformedLab::new(label);
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            run_survived(&lab, case, held)
                .err()
                .map(|e| format!("{}: {e}", case.what))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    lab.assert_speaker_still_serves();
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn treat_as_withdraw_errors_withdraw_the_update_routes_and_keep_the_session() {
    run_survived_cases("malformed-withdraw", cases::withdraw_cases(), 1);
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn attribute_discard_errors_and_ignorable_attributes_keep_the_routes_and_the_session() {
    run_survived_cases("malformed-discard", cases::discard_cases(), 3);
}
