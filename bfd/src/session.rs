//! One BFD session in asynchronous mode (RFC 5880 §6), sans-IO: `Session::handle(Event)`
//! returns the [`Action`]s to carry out. It reads no clock and owns no socket; timers are
//! data (the driver arms them and feeds expiries back as events), and jitter comes from a
//! seeded generator so every run of a test is the same.
//!
//! ```text
//!                             +--+
//!                             |  | UP, ADMIN DOWN, TIMER
//!                             |  V
//!                     DOWN  +------+  INIT
//!              +------------|      |------------+
//!              |            | DOWN |            |
//!              |  +-------->|      |<--------+  |
//!              |  |         +------+         |  |
//!              |  |                          |  |
//!              |  |               ADMIN DOWN,|  |
//!              |  |ADMIN DOWN,          DOWN,|  |
//!              |  |TIMER                TIMER|  |
//!              V  |                          |  V
//!            +------+                      +------+
//!       +----|      |                      |      |----+
//!   DOWN|    | INIT |--------------------->|  UP  |    |INIT, UP
//!       +--->|      | INIT, UP             |      |<---+
//!            +------+                      +------+
//! ```
//! (RFC 5880 §6.2; the labels are the state received from the remote, or TIMER for the
//! detection time expiring. AdminDown is entered and left only by local command.)

use std::time::Duration;

use crate::packet::{ControlPacket, Diag, State};

/// RFC 5880 §6.8.3: while not Up, Desired Min TX is at least one second.
const SLOW_TX_US: u32 = 1_000_000;

/// The three negotiated parameters a session is configured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Desired Min TX Interval: how often we would like to send once Up.
    pub desired_min_tx: Duration,
    /// Required Min RX Interval: the fastest we accept packets.
    pub required_min_rx: Duration,
    /// Detect Mult: how many missed intervals the remote waits before declaring us down.
    pub detect_mult: u8,
}

impl Timers {
    /// `interval` for both TX and RX, `multiplier` (e.g. 300 ms × 3).
    pub fn new(interval: Duration, multiplier: u8) -> Timers {
        Timers {
            desired_min_tx: interval,
            required_min_rx: interval,
            detect_mult: multiplier.max(1),
        }
    }
}

impl Default for Timers {
    /// 300 ms × 3, FRR's and most vendors' default.
    fn default() -> Timers {
        Timers::new(Duration::from_millis(300), 3)
    }
}

/// What happened to a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A packet that passed [`ControlPacket::decode`] and was demultiplexed to this session.
    Received(ControlPacket),
    /// The transmit timer fired.
    TxTimer,
    /// The detection timer fired.
    DetectTimer,
    /// Local command: hold the session administratively down.
    AdminDown,
    /// Local command: leave AdminDown.
    AdminUp,
    /// Local command: new timers (a Poll sequence tells the remote when Up).
    SetTimers(Timers),
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this packet to the remote now.
    Send(ControlPacket),
    /// (Re)arm the transmit timer to fire after this long.
    ArmTx(Duration),
    /// (Re)arm the detection timer to fire after this long.
    ArmDetect(Duration),
    /// Stop the detection timer.
    StopDetect,
    /// The local state changed.
    StateChanged {
        /// Previous state.
        from: State,
        /// New state.
        to: State,
        /// The diagnostic now reported.
        diag: Diag,
    },
}

/// The protocol state of one session (the `bfd.*` variables of RFC 5880 §6.8.1).
#[derive(Debug, Clone)]
pub struct Session {
    state: State,
    remote_state: State,
    local_discriminator: u32,
    remote_discriminator: u32,
    diag: Diag,
    timers: Timers,
    /// bfd.DesiredMinTxInterval as advertised, µs.
    desired_min_tx: u32,
    /// The Desired Min TX actually used for pacing: lags `desired_min_tx` while a Poll
    /// sequence for an increase is outstanding (§6.8.3).
    pacing_min_tx: u32,
    required_min_rx: u32,
    remote_min_rx: u32,
    remote_desired_min_tx: u32,
    remote_detect_mult: u8,
    remote_demand: bool,
    polling: bool,
    rng: u64,
}

fn micros(duration: Duration) -> u32 {
    u32::try_from(duration.as_micros())
        .unwrap_or(u32::MAX)
        .max(1)
}

impl Session {
    /// A new session in Down with our `local_discriminator` (non-zero, unique on this
    /// system), `timers`, and a `seed` for the jitter generator.
    pub fn new(local_discriminator: u32, timers: Timers, seed: u64) -> Session {
        let required_min_rx = micros(timers.required_min_rx);
        let desired_min_tx = micros(timers.desired_min_tx).max(SLOW_TX_US);
        Session {
            state: State::Down,
            remote_state: State::Down,
            local_discriminator,
            remote_discriminator: 0,
            diag: Diag::None,
            timers,
            desired_min_tx,
            pacing_min_tx: desired_min_tx,
            required_min_rx,
            remote_min_rx: 1,
            remote_desired_min_tx: 0,
            remote_detect_mult: 0,
            remote_demand: false,
            polling: false,
            // xorshift must not start at zero.
            rng: seed | 1,
        }
    }

    /// The local state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The state the remote last reported.
    pub fn remote_state(&self) -> State {
        self.remote_state
    }

    /// The diagnostic we report.
    pub fn diag(&self) -> Diag {
        self.diag
    }

    /// Our discriminator.
    pub fn local_discriminator(&self) -> u32 {
        self.local_discriminator
    }

    /// The remote's discriminator (0 until heard, and again after detection expires).
    pub fn remote_discriminator(&self) -> u32 {
        self.remote_discriminator
    }

    /// The configured timers.
    pub fn timers(&self) -> Timers {
        self.timers
    }

    /// Whether a Poll sequence is outstanding.
    pub fn polling(&self) -> bool {
        self.polling
    }

    /// The negotiated transmit interval before jitter: the larger of our pacing Desired
    /// Min TX and the remote's Required Min RX; `None` when the remote asked for no packets.
    pub fn tx_interval(&self) -> Option<Duration> {
        (self.remote_min_rx != 0)
            .then(|| Duration::from_micros(u64::from(self.pacing_min_tx.max(self.remote_min_rx))))
    }

    /// The detection time (§6.8.4, asynchronous mode): the remote's Detect Mult times the
    /// larger of our Required Min RX and the remote's Desired Min TX. Zero until heard.
    pub fn detection_time(&self) -> Duration {
        Duration::from_micros(
            u64::from(self.remote_detect_mult)
                * u64::from(self.required_min_rx.max(self.remote_desired_min_tx)),
        )
    }

    /// Actions to begin: send at once (so the remote learns of us without waiting a full
    /// interval) and arm the transmit timer.
    pub fn start(&mut self) -> Vec<Action> {
        let mut actions = vec![Action::Send(self.packet(self.polling, false))];
        self.arm_tx(&mut actions);
        actions
    }

    /// Processes one event.
    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        let mut actions = Vec::new();
        match event {
            Event::Received(packet) => self.receive(packet, &mut actions),
            Event::TxTimer => {
                if self.remote_min_rx != 0 {
                    actions.push(Action::Send(self.packet(self.polling, false)));
                }
                self.arm_tx(&mut actions);
            }
            Event::DetectTimer => {
                if matches!(self.state, State::Init | State::Up) {
                    // The remote is gone: forget what it told us (§6.8.1, bfd.RemoteDiscr).
                    self.remote_discriminator = 0;
                    self.remote_state = State::Down;
                    self.remote_min_rx = 1;
                    self.remote_desired_min_tx = 0;
                    self.remote_demand = false;
                    self.transition(State::Down, Diag::DetectionTimeExpired, &mut actions);
                }
            }
            Event::AdminDown => {
                if self.state != State::AdminDown {
                    self.transition(State::AdminDown, Diag::AdminDown, &mut actions);
                    actions.push(Action::StopDetect);
                }
            }
            Event::AdminUp => {
                if self.state == State::AdminDown {
                    self.transition(State::Down, Diag::None, &mut actions);
                }
            }
            Event::SetTimers(timers) => self.set_timers(timers, &mut actions),
        }
        actions
    }

    fn receive(&mut self, packet: ControlPacket, actions: &mut Vec<Action>) {
        let tx_before = self.tx_interval();
        self.remote_discriminator = packet.my_discriminator;
        self.remote_state = packet.state;
        self.remote_demand = packet.demand;
        self.remote_min_rx = packet.required_min_rx;
        self.remote_desired_min_tx = packet.desired_min_tx;
        self.remote_detect_mult = packet.detect_mult;
        if packet.final_ && self.polling {
            // The remote saw our new parameters: a pending increase takes effect now.
            self.polling = false;
            self.pacing_min_tx = self.desired_min_tx;
        }
        if self.tx_interval() != tx_before {
            self.arm_tx(actions);
        }
        if self.state == State::AdminDown {
            return;
        }
        if packet.state == State::AdminDown {
            if self.state != State::Down {
                self.transition(State::Down, Diag::NeighborSignaledDown, actions);
            }
        } else {
            match (self.state, packet.state) {
                (State::Down, State::Down) => self.transition(State::Init, self.diag, actions),
                (State::Down, State::Init) | (State::Init, State::Init | State::Up) => {
                    self.transition(State::Up, self.diag, actions);
                }
                (State::Up, State::Down) => {
                    self.transition(State::Down, Diag::NeighborSignaledDown, actions);
                }
                _ => {}
            }
        }
        if packet.poll {
            // §6.8.6: answer a Poll with Final "as soon as practicable", outside the pacing.
            actions.push(Action::Send(self.packet(false, true)));
        }
        if self.state == State::Down {
            actions.push(Action::StopDetect);
        } else {
            actions.push(Action::ArmDetect(self.detection_time()));
        }
    }

    fn set_timers(&mut self, timers: Timers, actions: &mut Vec<Action>) {
        self.timers = timers;
        self.required_min_rx = micros(timers.required_min_rx);
        let desired = if self.state == State::Up {
            micros(timers.desired_min_tx)
        } else {
            micros(timers.desired_min_tx).max(SLOW_TX_US)
        };
        self.change_desired_min_tx(desired, actions);
        if self.state == State::Up {
            self.polling = true;
            actions.push(Action::Send(self.packet(true, false)));
        }
    }

    /// §6.8.3: a decrease paces at once; an increase while Up waits for the Poll sequence.
    fn change_desired_min_tx(&mut self, desired: u32, actions: &mut Vec<Action>) {
        let before = self.tx_interval();
        self.desired_min_tx = desired;
        if desired < self.pacing_min_tx || self.state != State::Up {
            self.pacing_min_tx = desired;
        }
        if self.tx_interval() != before {
            self.arm_tx(actions);
        }
    }

    fn transition(&mut self, to: State, diag: Diag, actions: &mut Vec<Action>) {
        let from = self.state;
        self.state = to;
        self.diag = diag;
        actions.push(Action::StateChanged { from, to, diag });
        if to == State::Up {
            let fast = micros(self.timers.desired_min_tx);
            self.change_desired_min_tx(fast, actions);
            // The remote must learn our Up timers (§6.8.3): a Poll sequence.
            self.polling = fast != SLOW_TX_US || self.polling;
        } else if from == State::Up {
            self.polling = false;
            let slow = micros(self.timers.desired_min_tx).max(SLOW_TX_US);
            self.change_desired_min_tx(slow, actions);
        }
        // Tell the remote at once rather than at the next tick: halves the time to Up and
        // lets it act on AdminDown / Down without waiting for its own detection timer.
        actions.push(Action::Send(self.packet(self.polling, false)));
    }

    /// The next periodic packet (or a Final answer).
    pub fn packet(&self, poll: bool, final_: bool) -> ControlPacket {
        ControlPacket {
            diag: self.diag,
            state: self.state,
            poll,
            final_,
            control_plane_independent: false,
            auth_present: false,
            demand: false,
            multipoint: false,
            detect_mult: self.timers.detect_mult,
            my_discriminator: self.local_discriminator,
            your_discriminator: self.remote_discriminator,
            desired_min_tx: self.desired_min_tx,
            required_min_rx: self.required_min_rx,
            required_min_echo_rx: 0,
        }
    }

    fn arm_tx(&mut self, actions: &mut Vec<Action>) {
        let interval = self
            .tx_interval()
            .unwrap_or(Duration::from_micros(u64::from(SLOW_TX_US)));
        let delay = jittered(interval, self.timers.detect_mult, self.next_random());
        actions.retain(|a| !matches!(a, Action::ArmTx(_)));
        actions.push(Action::ArmTx(delay));
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: plenty for spreading transmissions, and reproducible.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// §6.8.7: each interval is reduced by a random 0–25 % (10–25 % when Detect Mult is 1, so
/// one late packet cannot cost the session).
pub fn jittered(interval: Duration, detect_mult: u8, random: u64) -> Duration {
    let (low, high) = if detect_mult == 1 {
        (75, 90)
    } else {
        (75, 100)
    };
    let percent = low + (random % (high - low + 1));
    interval * u32::try_from(percent).unwrap_or(100) / 100
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
