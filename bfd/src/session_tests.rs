//! Scripted-event tests of the session state machine.
#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use super::*;

const MS: Duration = Duration::from_millis(1);

fn sent(actions: &[Action]) -> Vec<ControlPacket> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(p) => Some(*p),
            _ => None,
        })
        .collect()
}

fn last_sent(actions: &[Action]) -> ControlPacket {
    *sent(actions).last().expect("a packet was sent")
}

fn changes(actions: &[Action]) -> Vec<(State, State)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::StateChanged { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect()
}

/// What the remote system sends: `state`, its discriminator `my`, ours `your`.
fn remote(state: State, my: u32, your: u32) -> ControlPacket {
    ControlPacket::for_tests(state, my, your)
}

/// Runs two sessions against each other, delivering every packet each sends, until quiet.
fn exchange(a: &mut Session, b: &mut Session, first: Vec<Action>) {
    let mut to_b = sent(&first);
    let mut to_a = Vec::new();
    for _ in 0..20 {
        if to_a.is_empty() && to_b.is_empty() {
            return;
        }
        for p in std::mem::take(&mut to_b) {
            to_a.extend(sent(&b.handle(Event::Received(p))));
        }
        for p in std::mem::take(&mut to_a) {
            to_b.extend(sent(&a.handle(Event::Received(p))));
        }
    }
}

#[test]
fn starts_down_sending_slowly_with_the_one_second_floor() {
    let mut s = Session::new(11, Timers::new(100 * MS, 3), 1);
    let actions = s.start();
    let p = last_sent(&actions);
    assert_eq!(s.state(), State::Down);
    assert_eq!(p.state, State::Down);
    assert_eq!(p.my_discriminator, 11);
    assert_eq!(p.your_discriminator, 0);
    assert_eq!(p.desired_min_tx, 1_000_000, "RFC 5880 §6.8.3 slow start");
    assert_eq!(p.required_min_rx, 100_000);
    assert_eq!(p.detect_mult, 3);
    assert!(ControlPacket::decode(&p.encode()).is_ok());
}

#[test]
fn three_way_handshake_down_init_up() {
    let mut s = Session::new(1, Timers::default(), 1);
    s.start();
    let a = s.handle(Event::Received(remote(State::Down, 2, 0)));
    assert_eq!(changes(&a), vec![(State::Down, State::Init)]);
    assert_eq!(last_sent(&a).your_discriminator, 2);
    assert_eq!(last_sent(&a).state, State::Init);
    let a = s.handle(Event::Received(remote(State::Init, 2, 1)));
    assert_eq!(changes(&a), vec![(State::Init, State::Up)]);
    assert!(a.contains(&Action::ArmDetect(900 * MS)));
    assert_eq!(s.state(), State::Up);
}

#[test]
fn down_receiving_init_goes_straight_up() {
    let mut s = Session::new(1, Timers::default(), 1);
    let a = s.handle(Event::Received(remote(State::Init, 2, 1)));
    assert_eq!(changes(&a), vec![(State::Down, State::Up)]);
}

#[test]
fn two_sessions_come_up_and_finish_their_poll_sequences() {
    let mut a = Session::new(1, Timers::new(100 * MS, 3), 7);
    let mut b = Session::new(2, Timers::new(50 * MS, 5), 8);
    let first = a.start();
    b.start();
    exchange(&mut a, &mut b, first);
    assert_eq!(a.state(), State::Up);
    assert_eq!(b.state(), State::Up);
    assert!(!a.polling() && !b.polling(), "Final answered each Poll");
    // a sends at max(its 100 ms, b's 50 ms RX); b at max(50 ms, a's 100 ms RX).
    assert_eq!(a.tx_interval(), Some(100 * MS));
    assert_eq!(b.tx_interval(), Some(100 * MS));
    // a detects b after b's multiplier (5) × max(a's RX 100, b's TX 50).
    assert_eq!(a.detection_time(), 500 * MS);
    assert_eq!(b.detection_time(), 300 * MS);
}

fn up_session() -> Session {
    let mut s = Session::new(1, Timers::default(), 1);
    s.handle(Event::Received(remote(State::Init, 2, 1)));
    s
}

#[test]
fn detection_timer_takes_init_and_up_down_but_not_down() {
    let mut s = up_session();
    let a = s.handle(Event::DetectTimer);
    assert_eq!(changes(&a), vec![(State::Up, State::Down)]);
    assert_eq!(s.diag(), Diag::DetectionTimeExpired);
    assert_eq!(s.remote_discriminator(), 0);
    assert_eq!(last_sent(&a).diag, Diag::DetectionTimeExpired);
    assert_eq!(last_sent(&a).desired_min_tx, 1_000_000);
    assert!(s.handle(Event::DetectTimer).is_empty());

    let mut init = Session::new(1, Timers::default(), 1);
    init.handle(Event::Received(remote(State::Down, 2, 0)));
    assert_eq!(
        changes(&init.handle(Event::DetectTimer)),
        vec![(State::Init, State::Down)]
    );
}

#[test]
fn remote_down_or_admin_down_ends_up() {
    for state in [State::Down, State::AdminDown] {
        let mut s = up_session();
        let a = s.handle(Event::Received(remote(state, 2, 1)));
        assert_eq!(changes(&a), vec![(State::Up, State::Down)], "{state}");
        assert_eq!(s.diag(), Diag::NeighborSignaledDown);
        assert!(a.contains(&Action::StopDetect));
    }
}

#[test]
fn up_ignores_init_and_up() {
    let mut s = up_session();
    for state in [State::Init, State::Up] {
        assert!(changes(&s.handle(Event::Received(remote(state, 2, 1)))).is_empty());
        assert_eq!(s.state(), State::Up);
    }
}

#[test]
fn admin_down_is_sticky_until_admin_up() {
    let mut s = up_session();
    let a = s.handle(Event::AdminDown);
    assert_eq!(changes(&a), vec![(State::Up, State::AdminDown)]);
    assert_eq!(last_sent(&a).state, State::AdminDown);
    assert_eq!(last_sent(&a).diag, Diag::AdminDown);
    // Packets are discarded for the state machine while AdminDown.
    assert!(changes(&s.handle(Event::Received(remote(State::Init, 2, 1)))).is_empty());
    assert_eq!(s.state(), State::AdminDown);
    assert!(s.handle(Event::DetectTimer).is_empty());
    let a = s.handle(Event::AdminUp);
    assert_eq!(changes(&a), vec![(State::AdminDown, State::Down)]);
}

#[test]
fn poll_is_answered_with_final_at_once() {
    let mut s = up_session();
    let mut p = remote(State::Up, 2, 1);
    p.poll = true;
    let a = s.handle(Event::Received(p));
    let reply = last_sent(&a);
    assert!(reply.final_ && !reply.poll);
}

#[test]
fn going_up_starts_a_poll_that_final_ends() {
    let mut s = up_session();
    assert!(s.polling());
    s.handle(Event::TxTimer);
    let tick = s.handle(Event::TxTimer);
    assert!(
        last_sent(&tick).poll,
        "periodic packets carry P until Final"
    );
    let mut f = remote(State::Up, 2, 1);
    f.final_ = true;
    s.handle(Event::Received(f));
    assert!(!s.polling());
    assert!(!last_sent(&s.handle(Event::TxTimer)).poll);
}

#[test]
fn increasing_tx_while_up_waits_for_final() {
    let mut s = up_session();
    let mut f = remote(State::Up, 2, 1);
    f.final_ = true;
    s.handle(Event::Received(f));
    assert_eq!(s.tx_interval(), Some(300 * MS));
    s.handle(Event::SetTimers(Timers::new(2000 * MS, 3)));
    assert!(s.polling());
    assert_eq!(s.packet(false, false).desired_min_tx, 2_000_000);
    assert_eq!(s.tx_interval(), Some(300 * MS), "old pacing until Final");
    s.handle(Event::Received(f));
    assert_eq!(s.tx_interval(), Some(2000 * MS));
}

#[test]
fn decreasing_tx_while_up_applies_at_once() {
    let mut s = up_session();
    let mut fast_remote = remote(State::Up, 2, 1);
    fast_remote.required_min_rx = 10_000;
    s.handle(Event::Received(fast_remote));
    let a = s.handle(Event::SetTimers(Timers::new(50 * MS, 3)));
    assert_eq!(s.tx_interval(), Some(50 * MS));
    assert!(
        a.iter()
            .any(|a| matches!(a, Action::ArmTx(d) if *d <= 50 * MS))
    );
}

#[test]
fn remote_min_rx_zero_stops_periodic_packets() {
    let mut s = up_session();
    let mut quiet = remote(State::Up, 2, 1);
    quiet.required_min_rx = 0;
    s.handle(Event::Received(quiet));
    assert_eq!(s.tx_interval(), None);
    assert!(sent(&s.handle(Event::TxTimer)).is_empty());
}

#[test]
fn slower_remote_rx_slows_our_tx_and_its_tx_sets_detection() {
    let mut s = up_session();
    let mut slow = remote(State::Up, 2, 1);
    slow.required_min_rx = 1_000_000;
    slow.desired_min_tx = 500_000;
    slow.detect_mult = 4;
    let a = s.handle(Event::Received(slow));
    assert_eq!(s.tx_interval(), Some(1000 * MS));
    assert!(a.contains(&Action::ArmDetect(2000 * MS)));
}

#[test]
fn jitter_stays_within_rfc_bounds() {
    let interval = 1000 * MS;
    let mut s = Session::new(1, Timers::default(), 42);
    for _ in 0..1000 {
        let r = s.next_random();
        let d = jittered(interval, 3, r);
        assert!(d >= 750 * MS && d <= interval, "{d:?}");
        let d1 = jittered(interval, 1, r);
        assert!(d1 >= 750 * MS && d1 <= 900 * MS, "{d1:?}");
    }
    // The bounds are reached.
    assert_eq!(jittered(interval, 3, 0), 750 * MS);
    assert_eq!(jittered(interval, 3, 25), interval);
    assert_eq!(jittered(interval, 1, 15), 900 * MS);
}

#[test]
fn tx_timer_always_rearms_within_the_interval() {
    let mut s = up_session();
    for _ in 0..50 {
        let a = s.handle(Event::TxTimer);
        let armed: Vec<_> = a
            .iter()
            .filter_map(|a| match a {
                Action::ArmTx(d) => Some(*d),
                _ => None,
            })
            .collect();
        assert_eq!(armed.len(), 1);
        assert!(armed[0] >= 225 * MS && armed[0] <= 300 * MS);
    }
}
