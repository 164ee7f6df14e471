//! The lab builder: namespaces, veths, bridges, addresses, routes and sysctls are created, carry
//! packets, and disappear on drop — also on panic and for leftovers of a dead process.

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use testbed::Lab;
use testbed::lab::netns;

fn net(s: &str) -> ipnetwork::IpNetwork {
    s.parse().unwrap()
}

/// Listens in `server`, connects from `client`, and returns what came back.
fn tcp_roundtrip(lab: &Lab, server: &str, client: &str, addr: SocketAddr) -> String {
    let listener = lab
        .netns(server)
        .unwrap()
        .run(move || TcpListener::bind(addr))
        .unwrap()
        .unwrap();
    let accept = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.write_all(b"hello").unwrap();
    });
    let reply = lab
        .netns(client)
        .unwrap()
        .run(move || {
            let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).unwrap();
            let mut reply = String::new();
            stream.read_to_string(&mut reply).unwrap();
            reply
        })
        .unwrap();
    accept.join().unwrap();
    reply
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn a_routed_lab_carries_packets_and_disappears_on_drop() {
    let mut lab = Lab::new("basic").unwrap();
    lab.add_namespace("a").unwrap();
    lab.add_router("r").unwrap();
    lab.add_namespace("b").unwrap();
    lab.link(("a", "eth0"), ("r", "eth1")).unwrap();
    lab.link(("b", "eth0"), ("r", "eth2")).unwrap();
    lab.add_address("a", "eth0", net("10.0.1.2/24")).unwrap();
    lab.add_address("r", "eth1", net("10.0.1.1/24")).unwrap();
    lab.add_address("b", "eth0", net("10.0.2.2/24")).unwrap();
    lab.add_address("r", "eth2", net("10.0.2.1/24")).unwrap();
    lab.add_address("a", "eth0", net("fd00:1::2/64")).unwrap();
    lab.add_address("r", "eth1", net("fd00:1::1/64")).unwrap();
    lab.add_address("b", "eth0", net("fd00:2::2/64")).unwrap();
    lab.add_address("r", "eth2", net("fd00:2::1/64")).unwrap();
    lab.add_route("a", net("0.0.0.0/0"), "10.0.1.1".parse().unwrap())
        .unwrap();
    lab.add_route("b", net("0.0.0.0/0"), "10.0.2.1".parse().unwrap())
        .unwrap();
    lab.add_route("a", net("::/0"), "fd00:1::1".parse().unwrap())
        .unwrap();
    lab.add_route("b", net("::/0"), "fd00:2::1".parse().unwrap())
        .unwrap();

    let r = lab.netns("r").unwrap();
    assert_eq!(r.read_sysctl("net/ipv4/ip_forward").unwrap(), "1");
    assert_eq!(r.read_sysctl("net/ipv6/conf/all/forwarding").unwrap(), "1");
    assert_eq!(
        r.read_sysctl("net/ipv4/fib_multipath_hash_policy").unwrap(),
        "1"
    );
    assert_eq!(
        r.read_sysctl("net/ipv6/fib_multipath_hash_policy").unwrap(),
        "1"
    );
    // Sysctls are per namespace: the host-like node does not forward.
    assert_eq!(
        lab.netns("a")
            .unwrap()
            .read_sysctl("net/ipv4/ip_forward")
            .unwrap(),
        "0"
    );

    let mut links = r.links().unwrap();
    links.sort();
    assert_eq!(links, ["eth1", "eth2", "lo"]);
    let fib = lab.netns("a").unwrap().fib().unwrap();
    assert_eq!(
        fib.gateways(net("0.0.0.0/0")),
        ["10.0.1.1".parse().unwrap()].into()
    );
    assert!(
        fib.route(net("10.0.1.0/24")).is_some(),
        "connected route missing: {fib:?}"
    );

    assert_eq!(
        tcp_roundtrip(&lab, "b", "a", "10.0.2.2:7000".parse().unwrap()),
        "hello"
    );
    assert_eq!(
        tcp_roundtrip(&lab, "b", "a", "[fd00:2::2]:7000".parse().unwrap()),
        "hello"
    );

    let paths: Vec<PathBuf> = lab
        .namespaces()
        .values()
        .map(|ns| ns.path().to_owned())
        .collect();
    let dir = lab.dir().to_owned();
    assert!(paths.iter().all(|p| p.exists()));
    drop(lab);
    assert!(paths.iter().all(|p| !p.exists()), "namespaces left behind");
    assert!(!dir.exists(), "runtime directory left behind");
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn a_bridge_joins_several_namespaces_on_one_segment() {
    let mut lab = Lab::new("bridge").unwrap();
    lab.add_bridge("tor").unwrap();
    for (i, node) in ["n1", "n2", "n3"].iter().enumerate() {
        lab.add_namespace(node).unwrap();
        lab.attach("tor", (node, "eth0")).unwrap();
        lab.add_address(node, "eth0", net(&format!("10.5.0.{}/24", i + 1)))
            .unwrap();
    }
    assert_eq!(
        tcp_roundtrip(&lab, "n3", "n1", "10.5.0.3:80".parse().unwrap()),
        "hello"
    );
    assert_eq!(
        tcp_roundtrip(&lab, "n1", "n2", "10.5.0.1:80".parse().unwrap()),
        "hello"
    );
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn a_panicking_test_still_removes_its_lab() {
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::panic::catch_unwind(move || {
        let mut lab = Lab::new("panic").unwrap();
        lab.add_namespace("x").unwrap();
        lab.spawn("x", "sleep", &["30"]).unwrap();
        tx.send(lab.netns("x").unwrap().path().to_owned()).unwrap();
        panic!("test failure inside a lab");
    });
    assert!(result.is_err());
    let path = rx.recv().unwrap();
    assert!(!path.exists(), "{} survived the panic", path.display());
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn parallel_labs_use_the_same_node_names_without_clashing() {
    let workers: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                let mut lab = Lab::new("parallel").unwrap();
                lab.add_router("r1").unwrap();
                lab.add_namespace("n1").unwrap();
                lab.link(("r1", "eth1"), ("n1", "eth0")).unwrap();
                lab.add_address("n1", "eth0", net("10.0.0.2/24")).unwrap();
                lab.id().to_string()
            })
        })
        .collect();
    let mut ids: Vec<String> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4);
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn leftovers_of_a_dead_run_are_swept_with_their_processes() {
    testbed::lab::require_root().unwrap();
    // A pid that surely is dead: a child that already exited and was reaped.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let name = format!("bt-{dead}-0-leftover");
    let path = netns::create(&name).unwrap();
    let mut straggler = std::process::Command::new("ip")
        .args(["netns", "exec", &name, "sleep", "60"])
        .spawn()
        .unwrap();
    testbed::wait::until("straggler inside", Duration::from_secs(5), || {
        Ok((!netns::processes_in(&path).is_empty()).then_some(()))
    })
    .unwrap();

    netns::sweep(&testbed::lab::runtime_root());

    assert!(!path.exists(), "leftover namespace not swept");
    let status = straggler.wait().unwrap();
    assert!(!status.success(), "the process inside was not killed");
}
