#!/usr/bin/env bash
# Rebuild the BGP test vectors in this directory from real implementations.
#
# Usage (as root, with bird2, frr, gobgpd/gobgp, exabgp, tcpdump and tshark installed):
#     bash bgp/tests/data/capture.sh            # writes *.hex next to this script
#     KEEP=1 bash bgp/tests/data/capture.sh     # also keeps the work directory (pcap, logs)
#
# Lab: one hub namespace holding a Linux bridge, and one namespace per router, each joined to the
# bridge by a veth pair. Everything is on 10.77.0.0/24 and fd77::/64 (private, inside the
# namespaces only). tcpdump runs on the bridge (promiscuous, so it sees every forwarded frame once).
#
#   bird   10.77.0.1 fd77::1  AS 65001
#   frr    10.77.0.2 fd77::2  AS 65002
#   gobgp  10.77.0.3 fd77::3  AS 65002 (iBGP with frr)
#   exabgp 10.77.0.4 fd77::4  AS 65004 towards frr, AS 65001 (iBGP) towards bird
#
# Sessions:  bird<->frr (IPv4 transport, ipv4 unicast)   bird<->frr (IPv6 transport, ipv6 unicast)
#            gobgp<->frr iBGP (IPv4 transport, ipv4+ipv6) gobgp<->bird (IPv6 transport, ipv6)
#            exabgp<->frr (IPv4 transport, ipv4+ipv6)    exabgp<->bird iBGP (IPv6 transport, ipv6)
#            exabgp<->frr (IPv6 transport, ipv6, no 4-octet AS: AS_TRANS + AS4_PATH)
#
# After the sessions come up the script drives each implementation through announcements,
# withdrawals, route refreshes and administrative shutdowns, then calls extract.py, which
# reassembles each TCP direction, splits it into whole BGP messages and writes one .hex per
# selected message (format: README.md).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$HERE}
for tool in bird birdc vtysh gobgpd gobgp exabgp tcpdump tshark python3 ip; do
    command -v "$tool" >/dev/null || { echo "capture.sh: missing tool: $tool" >&2; exit 1; }
done
[ -x /usr/lib/frr/zebra ] && [ -x /usr/lib/frr/bgpd ] || { echo "capture.sh: FRR (zebra, bgpd) missing" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "capture.sh: must run as root (network namespaces)" >&2; exit 1; }

TAG="bcap$$"
NS_HUB="$TAG-hub"
WORK=$(mktemp -d "/tmp/$TAG.XXXX")
chmod 755 "$WORK"
PIDS=()

cleanup() {
    set +e
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for f in "$WORK"/frr/*.pid "$WORK"/bird.pid "$WORK"/exabgp.pid; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
    done
    sleep 1
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
    for f in "$WORK"/frr/*.pid "$WORK"/bird.pid; do
        [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
    done
    for ns in bird frr gobgp exabgp hub; do ip netns del "$TAG-$ns" 2>/dev/null; done
    if [ -n "${KEEP:-}" ]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

say() { echo "== $*" >&2; }
# Scenario commands are logged with a timestamp; extract.py names the one before each message.
SCENARIO=
log_action() { [ -z "$SCENARIO" ] || echo "$(date +%s.%N) $*" >>"$WORK/actions.log"; }
in_ns() { local ns=$1; shift; ip netns exec "$TAG-$ns" "$@"; }

# ---------------------------------------------------------------- topology
ip netns add "$NS_HUB"
in_ns hub ip link add br0 type bridge stp_state 0 forward_delay 0
in_ns hub ip link set lo up
in_ns hub ip link set br0 up
n=0
for r in bird frr gobgp exabgp; do
    n=$((n + 1))
    ip netns add "$TAG-$r"
    in_ns "$r" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    in_ns hub ip link add "p-$r" type veth peer name eth0 netns "$TAG-$r"
    in_ns hub ip link set "p-$r" master br0 up
    in_ns "$r" ip link set lo up
    in_ns "$r" ip link set eth0 address "02:77:00:00:00:0$n"
    in_ns "$r" ip addr add "10.77.0.$n/24" dev eth0
    in_ns "$r" ip -6 addr add "fd77::$n/64" dev eth0 nodad
    in_ns "$r" ip link set eth0 up
done

ip netns exec "$NS_HUB" tcpdump -i br0 -U -s 0 -w "$WORK/bgp.pcap" 'tcp port 179' 2>"$WORK/tcpdump.log" &
PIDS+=($!)
sleep 1

# ---------------------------------------------------------------- BIRD
cat >"$WORK/bird.conf" <<'EOF'
router id 10.77.0.1;
protocol device {}
protocol static s4 { ipv4; route 198.51.100.0/24 blackhole; route 198.51.100.128/25 blackhole; }
protocol static s6 { ipv6; route 2001:db8:1::/48 blackhole; route 2001:db8:1:8000::/49 blackhole; }
protocol static s4w { disabled; ipv4; route 198.51.101.0/24 blackhole; route 198.51.101.64/26 blackhole; }
protocol static s6w { disabled; ipv6; route 2001:db8:11::/48 blackhole; route 2001:db8:12::/48 blackhole; }
filter ebgp_out {
    if source != RTS_STATIC then accept;
    bgp_community.add((65001, 100)); bgp_community.add((65001, 200));
    bgp_large_community.add((65001, 1, 2));
    bgp_ext_community.add((rt, 65001, 100));
    bgp_med = 50;
    bgp_path.prepend(65001);
    accept;
}
filter ibgp_out {
    if source != RTS_STATIC then reject;
    bgp_local_pref = 300;
    bgp_community.add((65001, 300));
    bgp_large_community.add((65001, 3, 4));
    accept;
}
template bgp common {
    local as 65001;
    hold time 240;
    graceful restart on;
    long lived graceful restart on;
    enable route refresh on;
    enable extended messages on;
}
protocol bgp frr4 from common {
    local 10.77.0.1; neighbor 10.77.0.2 as 65002;
    ipv4 { import all; export filter ebgp_out; add paths on; };
}
protocol bgp frr6 from common {
    local fd77::1; neighbor fd77::2 as 65002; interface "eth0";
    ipv6 { import all; export filter ebgp_out; add paths on; };
}
protocol bgp gobgp6 from common {
    local fd77::1; neighbor fd77::3 as 65002; interface "eth0";
    ipv6 { import all; export filter ebgp_out; };
}
protocol bgp exa6 from common {
    local fd77::1; neighbor fd77::4 as 65001; interface "eth0"; direct;
    ipv6 { import all; export filter ibgp_out; next hop self; gateway direct; };
}
EOF

# ---------------------------------------------------------------- FRR
mkdir -p "$WORK/frr"
cat >"$WORK/frr/frr.conf" <<'EOF'
frr defaults traditional
hostname frr-lab
log file FRRDIR/frr.log
!
route-map SET permit 10
 set community 65002:100 65002:200
 set large-community 65002:1:2
 set extcommunity rt 65002:100
 set metric 20
 set local-preference 250
 set as-path prepend 65002 65002
!
router bgp 65002
 bgp router-id 10.77.0.2
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 no bgp network import-check
 bgp graceful-restart
 bgp long-lived-graceful-restart stale-time 300
 timers bgp 60 240
 neighbor 10.77.0.1 remote-as 65001
 neighbor fd77::1 remote-as 65001
 neighbor 10.77.0.3 remote-as 65002
 neighbor 10.77.0.4 remote-as 65004
 neighbor fd77::4 remote-as 65005
 neighbor fd77::4 timers connect 5
 !
 address-family ipv4 unicast
  network 203.0.113.0/24 route-map SET
  network 203.0.113.128/25 route-map SET
  neighbor 10.77.0.1 activate
  neighbor 10.77.0.1 send-community all
  neighbor 10.77.0.1 addpath-tx-all-paths
  neighbor 10.77.0.3 activate
  neighbor 10.77.0.3 send-community all
  neighbor 10.77.0.3 addpath-tx-all-paths
  neighbor 10.77.0.4 activate
  neighbor 10.77.0.4 send-community all
 exit-address-family
 !
 address-family ipv6 unicast
  network 2001:db8:2::/48 route-map SET
  network 2001:db8:2:8000::/49 route-map SET
  neighbor fd77::1 activate
  neighbor fd77::1 send-community all
  neighbor fd77::1 addpath-tx-all-paths
  neighbor 10.77.0.3 activate
  neighbor 10.77.0.3 send-community all
  neighbor 10.77.0.4 activate
  neighbor 10.77.0.4 send-community all
  neighbor fd77::4 activate
  neighbor fd77::4 send-community all
 exit-address-family
!
EOF
sed -i "s|FRRDIR|$WORK/frr|" "$WORK/frr/frr.conf"
chown -R frr:frr "$WORK/frr"
FRR_ARGS=(-N "$TAG" -z "$WORK/frr/zserv.api" --vty_socket "$WORK/frr" -f "$WORK/frr/frr.conf" -d)
vty() { log_action "frr: vtysh ${*@Q}"; in_ns frr vtysh --vty_socket "$WORK/frr" "$@"; }

# ---------------------------------------------------------------- GoBGP
cat >"$WORK/gobgp.toml" <<'EOF'
[global.config]
  as = 65002
  router-id = "10.77.0.3"
  local-address-list = ["10.77.0.3", "fd77::3"]

[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.77.0.2"
    peer-as = 65002
  [neighbors.timers.config]
    hold-time = 240
  [neighbors.graceful-restart.config]
    enabled = true
    restart-time = 120
    long-lived-enabled = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
    [neighbors.afi-safis.add-paths.config]
      receive = true
      send-max = 4
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
    [neighbors.afi-safis.long-lived-graceful-restart.config]
      enabled = true
      restart-time = 600
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true

[[neighbors]]
  [neighbors.config]
    neighbor-address = "fd77::1"
    peer-as = 65001
  [neighbors.timers.config]
    hold-time = 240
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
EOF
GOBGP_PORT=50077
gob() { log_action "gobgp: gobgp ${*@Q}"; in_ns gobgp gobgp -p "$GOBGP_PORT" "$@"; }

# ---------------------------------------------------------------- ExaBGP
# The API process turns lines appended to exabgp.cmd into ExaBGP commands.
: >"$WORK/exabgp.cmd"
cat >"$WORK/api.sh" <<EOF
#!/bin/sh
exec tail -n +1 -f "$WORK/exabgp.cmd"
EOF
chmod +x "$WORK/api.sh"
cat >"$WORK/exabgp.conf" <<EOF
process cmd {
    run $WORK/api.sh;
    encoder text;
}
template {
    neighbor base {
        router-id 10.77.0.4;
        hold-time 240;
        api { processes [ cmd ]; }
    }
}
neighbor 10.77.0.2 {
    inherit base;
    local-address 10.77.0.4;
    local-as 65004;
    peer-as 65002;
    family { ipv4 unicast; ipv6 unicast; }
    capability { route-refresh; graceful-restart 120; add-path send/receive; }
    static {
        route 192.0.2.0/25 next-hop 10.77.0.4 origin igp as-path [ 65004 65004 ] med 40 community [ 65004:100 65004:200 ] large-community [ 65004:1:2 ] extended-community [ target:65004:100 ];
        route 2001:db8:4::/48 next-hop fd77::4 origin igp as-path [ 65004 ] community [ 65004:100 ] large-community [ 65004:1:2 ];
    }
}
neighbor fd77::1 {
    inherit base;
    local-address fd77::4;
    local-as 65001;
    peer-as 65001;
    family { ipv6 unicast; }
    capability { route-refresh; }
    static {
        route 2001:db8:44::/48 next-hop fd77::4 origin igp local-preference 400 community [ 65001:400 ] large-community [ 65001:4:4 ];
    }
}
neighbor fd77::2 {
    inherit base;
    local-address fd77::4;
    local-as 65005;
    peer-as 65002;
    family { ipv6 unicast; }
    capability { asn4 disable; route-refresh; }
}
EOF
exa() { log_action "exabgp: API command: $*"; echo "$*" >>"$WORK/exabgp.cmd"; sleep 0.5; }

# ---------------------------------------------------------------- start
say "starting routers in namespaces $TAG-*"
in_ns bird bird -c "$WORK/bird.conf" -s "$WORK/bird.ctl" -P "$WORK/bird.pid"
birdc() { log_action "bird: birdc ${*@Q}"; in_ns bird /usr/sbin/birdc -s "$WORK/bird.ctl" "$@"; }
in_ns frr /usr/lib/frr/zebra "${FRR_ARGS[@]}" -i "$WORK/frr/zebra.pid"
sleep 1
in_ns frr /usr/lib/frr/bgpd "${FRR_ARGS[@]}" -i "$WORK/frr/bgpd.pid"
ip netns exec "$TAG-gobgp" gobgpd -f "$WORK/gobgp.toml" --api-hosts "127.0.0.1:$GOBGP_PORT" >"$WORK/gobgpd.log" 2>&1 &
PIDS+=($!)
env exabgp.daemon.user=root exabgp.daemon.drop=false exabgp.api.ack=false exabgp.api.cli=false \
    exabgp.log.destination="$WORK/exabgp.log" exabgp.daemon.pid="$WORK/exabgp.pid" \
    ip netns exec "$TAG-exabgp" exabgp "$WORK/exabgp.conf" >"$WORK/exabgp.out" 2>&1 &
EXABGP_PID=$!
PIDS+=($EXABGP_PID)

established() {
    local n
    n=$(vty -c 'show bgp summary json' 2>/dev/null | python3 -c '
import json,sys
d=json.load(sys.stdin); seen=set()
for af in d.values():
    for ip,p in af.get("peers",{}).items():
        if p.get("state")=="Established": seen.add(ip)
print(len(seen))' 2>/dev/null || echo 0)
    [ "$n" -ge 5 ] || return 1
    [ "$(birdc show protocols 2>/dev/null | grep -c Established)" -ge 4 ] || return 1
    [ "$(gob neighbor 2>/dev/null | grep -c Establ)" -ge 2 ] || return 1
}
say "waiting for sessions"
for _ in $(seq 1 90); do established && break; sleep 1; done
if ! established; then
    vty -c 'show bgp summary' >&2 || true
    birdc show protocols >&2 || true
    gob neighbor >&2 || true
    echo "capture.sh: sessions did not come up" >&2
    exit 1
fi
sleep 5 # initial tables, End-of-RIB markers

# ---------------------------------------------------------------- scenario
step() { say "$*"; sleep 3; }
SCENARIO=1

step "gobgp announces"
gob global rib add -a ipv4 192.0.2.128/26 origin igp nexthop 10.77.0.3 med 30 local-pref 350 \
    community 65002:300,65002:301 large-community 65002:3:4 aspath 65010,65011
gob global rib add -a ipv6 2001:db8:3::/48 origin igp nexthop fd77::3 med 30 local-pref 350 \
    community 65002:300 large-community 65002:3:4
step "gobgp withdraws"
gob global rib del -a ipv4 192.0.2.128/26
gob global rib del -a ipv6 2001:db8:3::/48

step "exabgp announces and withdraws"
exa "neighbor 10.77.0.2 announce route 192.0.2.192/26 next-hop self as-path [ 65004 4200000009 ] community [ 65004:500 ] large-community [ 4200000009:5:6 ]"
exa "neighbor fd77::1 announce route 2001:db8:45::/48 next-hop self local-preference 450 large-community [ 65001:5:6 ]"
# 4-octet AS numbers in paths: over the session without the 4-octet AS capability ExaBGP sends
# AS_TRANS in AS_PATH plus AS4_PATH, and FRR relays the first route to it the same way.
exa "neighbor 10.77.0.2 announce route 2001:db8:46::/48 next-hop fd77::4 as-path [ 65004 4200000009 ] large-community [ 4200000009:7:8 ]"
exa "neighbor fd77::2 announce route 2001:db8:47::/48 next-hop fd77::4 as-path [ 65005 4200000009 ] community [ 65005:1 ]"
sleep 2
exa "neighbor 10.77.0.2 withdraw route 192.0.2.192/26 next-hop self"
exa "neighbor 10.77.0.2 withdraw route 2001:db8:4::/48 next-hop fd77::4"
exa "neighbor fd77::1 withdraw route 2001:db8:45::/48 next-hop self"

step "bird announces and withdraws"
birdc enable s4w
birdc enable s6w
sleep 3
birdc disable s4w
birdc disable s6w

step "frr withdraws"
vty -c 'configure terminal' -c 'router bgp 65002' -c 'address-family ipv4 unicast' -c 'no network 203.0.113.128/25' \
    -c 'exit-address-family' -c 'address-family ipv6 unicast' -c 'no network 2001:db8:2:8000::/49'

step "route refresh"
birdc reload in frr4
birdc reload in frr6
sleep 2
vty -c 'clear bgp 10.77.0.1 soft in'
vty -c 'clear bgp 10.77.0.3 soft in'
sleep 2
gob neighbor 10.77.0.2 softresetin
gob neighbor fd77::1 softresetin
sleep 2
exa "neighbor 10.77.0.2 announce route-refresh ipv4 unicast"
exa "neighbor 10.77.0.2 announce route-refresh ipv6 unicast"
sleep 2
say "enhanced route refresh (BoRR/EoRR)"
vty -c 'clear bgp 10.77.0.1 soft out'
vty -c 'clear bgp fd77::1 soft out'
sleep 2
birdc reload out frr4

step "administrative shutdowns"
gob neighbor fd77::1 shutdown --reason "gobgp maintenance window"
sleep 1
vty -c 'configure terminal' -c 'router bgp 65002' -c 'neighbor 10.77.0.3 shutdown message frr maintenance window'
sleep 1
birdc 'disable frr4 "bird maintenance window"'
sleep 1
# ExaBGP 4.2 closes a torn-down session silently when it announced graceful restart on it, so
# tear down the session to BIRD (no GR): Cease with the given subcode and a fixed text.
exa "neighbor fd77::1 teardown 2"
sleep 3

say "stopping capture"
kill "${PIDS[0]}"
wait "${PIDS[0]}" 2>/dev/null || true
rm -f "$OUT"/*.hex # rebuilt from scratch; *.expected files belong to the harness and are left alone

python3 "$HERE/extract.py" --pcap "$WORK/bgp.pcap" --out "$OUT" \
    --peer "10.77.0.1=bird" --peer "fd77::1=bird" --peer "fe80::77:ff:fe00:1=bird" \
    --peer "10.77.0.2=frr" --peer "fd77::2=frr" \
    --peer "10.77.0.3=gobgp" --peer "fd77::3=gobgp" \
    --peer "10.77.0.4=exabgp" --peer "fd77::4=exabgp" \
    --version "bird=BIRD $(bird --version 2>&1 | awk '{print $NF}')" \
    --version "frr=FRR $(in_ns frr vtysh --vty_socket "$WORK/frr" -c 'show version' 2>/dev/null | sed -n 's/^FRRouting \([^ ]*\).*/\1/p' | head -1)" \
    --version "gobgp=GoBGP $(gobgpd --version 2>&1 | awk '{print $NF}')" \
    --version "exabgp=ExaBGP $(exabgp --version 2>&1 | sed -n 's/^ExaBGP : //p')" \
    --configs "$WORK" --actions "$WORK/actions.log"
say "done"
