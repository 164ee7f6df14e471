//! The VIP device and the host router ID, through rtnetlink, inside a network namespace
//! this test creates for one thread (`unshare(CLONE_NEWNET)`): nothing outside it is
//! touched, and it vanishes with the thread. Needs root (CAP_NET_ADMIN). The device is
//! the namespace's `lo` (an existing device), so the test does not depend on the kernel's
//! `dummy` driver.
#![allow(
    unsafe_code,
    reason = "unshare(2) has no safe wrapper in the workspace's dependencies"
)]

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::Command;

use speaker::netlink::{VipDevice, host_router_id};

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

fn addresses(dev: &str) -> String {
    let out = Command::new("ip")
        .args(["-o", "addr", "show", "dev", dev])
        .output()
        .expect("run ip (iproute2)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn vips_go_on_and_come_off_a_device() {
    assert!(
        is_root(),
        "this test needs root (CAP_NET_ADMIN) to create a network namespace: run as root"
    );
    let result = std::thread::spawn(|| {
        // SAFETY: unshare only changes this thread's network namespace; no memory is shared.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "unshare(CLONE_NEWNET): {}",
            std::io::Error::last_os_error()
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut dev = VipDevice::open("lo").await.expect("open");
            assert!(dev.held().is_empty());
            let want = BTreeSet::from([ip("192.0.2.10"), ip("fd00:beef::10")]);
            dev.sync(&want).await;
            assert_eq!(dev.held(), &want);
            let shown = addresses("lo");
            assert!(shown.contains("192.0.2.10/32"), "{shown}");
            assert!(shown.contains("fd00:beef::10/128"), "{shown}");
            assert_eq!(
                host_router_id().await.expect("router id"),
                Some("192.0.2.10".parse().expect("ip"))
            );

            // A second run adopts what is there; withdrawing takes only what went away.
            let mut again = VipDevice::open("lo").await.expect("reopen");
            assert_eq!(again.held(), &want);
            again.sync(&BTreeSet::from([ip("fd00:beef::10")])).await;
            let shown = addresses("lo");
            assert!(!shown.contains("192.0.2.10"), "{shown}");
            assert!(shown.contains("fd00:beef::10/128"), "{shown}");
            again.sync(&BTreeSet::new()).await;
            assert!(again.held().is_empty());
            assert!(!addresses("lo").contains("fd00:beef::10"));
        });
    })
    .join();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
