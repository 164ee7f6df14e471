//! The Berth sender of the whole-system benchmark (`whole`): a `bgp::driver::Speaker` in a
//! process of its own, so its CPU time and peak RSS are measured alone. It runs inside the
//! lab's sender namespace, accepts sessions from the receiver (passive), and announces its
//! routes before any session exists.
//!
//! Usage: `berth-sender PEER[,PEER...] ROUTES_PER_SESSION [shuffled]` — session `i` gets
//! the `i`-th block of routes (see `benches::whole::addressing`), in address order, or in a
//! fixed pseudo-random order with `shuffled` (to see whether the receiver's speed depends on
//! the order prefixes arrive in). Prints `ready` once announced, then
//! reads commands from stdin: `a` announces and `w` withdraws the churn prefix to every
//! peer, each answered with `t NANOS` (wall clock just before the call). EOF shuts down.

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::time::Duration;

use benches::whole::addressing::{CHURN_PREFIX, RECEIVER_AS, SENDER, SENDER_AS, route};
use benches::whole::probe::now_ns;
use bgp::driver::{PeerConfig, Speaker, SpeakerConfig, Target};
use bgp::rib::{Prefix, RouteAttrs};
use bgp::session::ConnectMode;
use bgp::wire::Family;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(peers), Some(per_session)) = (
        args.get(1),
        args.get(2).and_then(|n| n.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: berth-sender PEER[,PEER...] ROUTES_PER_SESSION");
        return ExitCode::from(2);
    };
    let peers: Vec<Ipv4Addr> = match peers.split(',').map(str::parse).collect() {
        Ok(peers) => peers,
        Err(e) => {
            eprintln!("berth-sender: bad peer address: {e}");
            return ExitCode::from(2);
        }
    };
    // One thread, as a per-node speaker would run: the CPU figure is the whole cost.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("berth-sender: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shuffled = args.get(3).is_some_and(|a| a == "shuffled");
    match runtime.block_on(run(peers, per_session, shuffled)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-sender: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Permutes `items` with a fixed xorshift sequence (Fisher–Yates): the same order every run.
fn shuffle<T>(items: &mut [T]) {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(i, (state % (i as u64 + 1)) as usize);
    }
}

async fn run(
    peers: Vec<Ipv4Addr>,
    per_session: usize,
    shuffled: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = SpeakerConfig::new(SENDER_AS, SENDER);
    config.listen_addresses = vec![Ipv4Addr::UNSPECIFIED.into()];
    let speaker = Speaker::start(config).await?;
    let sessions = peers.len();
    for (i, peer) in peers.iter().enumerate() {
        let address = IpAddr::V4(*peer);
        let mut config = PeerConfig::new(address, SENDER_AS, RECEIVER_AS, SENDER);
        config.session.mode = ConnectMode::Passive;
        config.session.hold_time = 90;
        config.session.families = vec![Family::IPV4_UNICAST];
        speaker.add_peer(config)?;
        let mut prefixes: Vec<Prefix> = (0..per_session)
            .filter_map(|j| Prefix::new(route(i, j, sessions).into(), 32))
            .collect();
        if shuffled {
            shuffle(&mut prefixes);
        }
        speaker
            .announce(prefixes, RouteAttrs::default(), Target::Peer(address))
            .await?;
    }
    println!("ready");
    let (tx, mut commands) = tokio::sync::mpsc::channel::<String>(4);
    std::thread::spawn(move || {
        let mut line = String::new();
        while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
            if tx.blocking_send(line.trim().to_string()).is_err() {
                return;
            }
            line.clear();
        }
    });
    let churn = Prefix::new(CHURN_PREFIX.into(), 32).ok_or("churn prefix")?;
    while let Some(command) = commands.recv().await {
        let t = now_ns();
        match command.as_str() {
            "a" => {
                speaker
                    .announce([churn], RouteAttrs::default(), Target::All)
                    .await?;
            }
            "w" => speaker.withdraw([churn], Target::All).await?,
            other => return Err(format!("unknown command {other:?}").into()),
        }
        println!("t {t}");
    }
    speaker.shutdown("benchmark over", Duration::ZERO).await;
    Ok(())
}
