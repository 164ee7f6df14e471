#!/usr/bin/env bash
# Standalone mode at scale: N Services in a manifest directory, the real berth-controller and
# berth-speaker on it. Prints how long the controller took to allocate every Service, each
# daemon's CPU over an idle window (the directory untouched) and its peak RSS.
#
#   scripts/standalone-idle.sh [N=10000] [IDLE_SECONDS=10]
#   BIN=target/release scripts/standalone-idle.sh 100000   # after cargo build --release
#   SPEAKER_ARGS="--layer2-port 0" scripts/standalone-idle.sh # without layer-2 heartbeats
#
# No root, no network: the speaker has no peers (its BGP listener on a free loopback port).
set -euo pipefail
N=${1:-10000}
IDLE=${2:-10}
BIN=${BIN:-target/debug}
for b in berth-controller berth-speaker; do
    [[ -x $BIN/$b ]] || { echo "build $BIN/$b first (cargo build -p controller -p speaker)" >&2; exit 1; }
done
DIR=$(mktemp -d)
trap 'kill $CPID $SPID 2>/dev/null || true; rm -rf "$DIR"' EXIT
python3 - "$DIR" "$N" <<'EOF'
import sys
d, n = sys.argv[1], int(sys.argv[2])
open(f"{d}/cluster.yaml", "w").write("""apiVersion: v1
kind: Node
metadata: {name: n1}
status: {addresses: [{type: InternalIP, address: 127.0.0.1}]}
---
apiVersion: network.kubesphere.io/v1alpha2
kind: BgpConf
metadata: {name: default}
spec: {as: 65001, listenAddresses: [127.0.0.1]}
---
apiVersion: network.kubesphere.io/v1alpha2
kind: Eip
metadata:
  name: pool
  annotations: {eip.openelb.kubesphere.io/is-default-eip: "true"}
spec: {address: 10.128.0.0/10}
""")
with open(f"{d}/services.yaml", "w") as f:
    for i in range(n):
        f.write(f"""---
apiVersion: v1
kind: Service
metadata: {{name: s{i}, namespace: bench}}
spec: {{type: LoadBalancer, loadBalancerClass: berth.io/lb, externalTrafficPolicy: Cluster, ports: [{{port: 80}}]}}
""")
EOF
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
hwm() { awk '/VmHWM/ {print $2/1024 " MiB"}' "/proc/$1/status"; }
start=$(date +%s.%N)
"$BIN/berth-controller" --state-dir "$DIR" --metrics-addr "" 2>"$DIR.controller.log" &
CPID=$!
"$BIN/berth-speaker" --node-name n1 --state-dir "$DIR" --listen-port "$(free)" \
    --admin-addr "127.0.0.1:$(free)" --metrics-addr "127.0.0.1:$(free)" ${SPEAKER_ARGS:-} 2>"$DIR.speaker.log" &
SPID=$!
# Every Service allocated: as many ingress entries in the file as Services.
until [[ $(grep -c 'ipMode: VIP' "$DIR/services.yaml" || true) -ge $N ]]; do sleep 0.05; done
end=$(date +%s.%N)
echo "services: $N"
echo "controller: all allocated and written in $(echo "$end - $start" | bc) s (from start)"
hz=$(getconf CLK_TCK)
# Settled: neither daemon used more than one tick in the last second (the speaker reads the
# written file after the controller; at most two minutes).
for _ in $(seq 120); do
    c0=$(cpu $CPID); s0=$(cpu $SPID); sleep 1
    (( $(cpu $CPID) - c0 <= 1 && $(cpu $SPID) - s0 <= 1 )) && break
done
echo "settled $(echo "$(date +%s.%N) - $start" | bc) s from start"
c0=$(cpu $CPID); s0=$(cpu $SPID)
sleep "$IDLE"
c1=$(cpu $CPID); s1=$(cpu $SPID)
echo "idle ${IDLE}s: controller $(echo "scale=3; ($c1-$c0)*100/$hz/$IDLE" | bc) % of a core, speaker $(echo "scale=3; ($s1-$s0)*100/$hz/$IDLE" | bc) % of a core"
echo "peak RSS: controller $(hwm $CPID), speaker $(hwm $SPID)"
# Latency: one new Service file at a time (written by rename), until its status is in it.
python3 - "$DIR" <<'EOF2'
import os, sys, time
d = sys.argv[1]
samples = []
for i in range(50):
    path, tmp = f"{d}/new-{i}.yaml", f"{d}/.new-{i}.yaml.tmp"
    with open(tmp, "w") as f:
        f.write(f"apiVersion: v1\nkind: Service\nmetadata: {{name: new{i}, namespace: bench}}\n"
                "spec: {type: LoadBalancer, loadBalancerClass: berth.io/lb, ports: [{port: 80}]}\n")
    t0 = time.monotonic()
    os.rename(tmp, path)
    while "ipMode" not in open(path).read():
        time.sleep(0.0005)
    samples.append((time.monotonic() - t0) * 1000)
    time.sleep(0.05)
samples.sort()
print(f"file written -> allocation written: p50 {samples[24]:.1f} ms, p99 {samples[48]:.1f} ms, max {samples[-1]:.1f} ms (50 Services)")
EOF2
rm -f "$DIR.controller.log" "$DIR.speaker.log"
