#!/usr/bin/env python3
"""Split a pcap of BGP sessions into whole BGP messages and write selected test vectors.

Called by capture.sh; see README.md for the output format. Standard library only.

For every TCP connection on port 179 it reassembles each direction by sequence number, splits the
byte stream on the BGP header (16 x 0xff marker + 2-byte length), checks that every message is
whole, works out what the session negotiated from the two OPEN messages, classifies each message
and keeps the first message of each kind per sender (identical bytes with identical context are
kept once). The decode comment comes from `tshark -V` run on a tiny synthetic capture holding the
session's two OPENs and the message, so tshark sees the same negotiated state.
"""

import argparse
import ipaddress
import os
import re
import struct
import subprocess
import sys
import tempfile

MARKER = b"\xff" * 16
FAMILIES = {(1, 1): "ipv4", (2, 1): "ipv6"}
MSG_TYPES = {1: "open", 2: "update", 3: "notification", 4: "keepalive", 5: "route-refresh"}
CEASE = {
    1: "max-prefixes",
    2: "admin-shutdown",
    3: "peer-deconfigured",
    4: "admin-reset",
    5: "connection-rejected",
    6: "other-config-change",
    7: "collision",
    8: "out-of-resources",
    9: "hard-reset",
}
# Short name parts for the optional attributes an announcement carries.
ATTR_TAGS = [
    (4, "med"), (5, "localpref"), (6, "atomic"), (7, "aggregator"), (8, "comm"), (16, "extcomm"),
    (17, "as4path"), (18, "as4aggregator"), (32, "largecomm"),
]
NOTIFY = {1: "header", 2: "open", 3: "update", 4: "hold-timer", 5: "fsm", 6: "cease", 7: "route-refresh"}


# ----------------------------------------------------------------------------- pcap and TCP


def read_pcap(path):
    """Yield (timestamp, frame bytes) for each record of a classic pcap file (Ethernet)."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        sys.exit("extract.py: not a pcap file: " + path)
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(end + "I", data[20:24])[0]
    if linktype != 1:
        sys.exit("extract.py: expected Ethernet link type, got %d" % linktype)
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(end + "IIII", data[pos : pos + 16])
        pos += 16
        yield sec + frac / (1e9 if nano else 1e6), data[pos : pos + incl]
        pos += incl


def parse_frame(frame):
    """Return (src, dst, sport, dport, seq, flags, payload) for a TCP frame, else None."""
    etype = struct.unpack("!H", frame[12:14])[0]
    off = 14
    while etype == 0x8100:
        etype = struct.unpack("!H", frame[off + 2 : off + 4])[0]
        off += 4
    if etype == 0x0800:
        ihl = (frame[off] & 0x0F) * 4
        total = struct.unpack("!H", frame[off + 2 : off + 4])[0]
        if frame[off + 9] != 6:
            return None
        src = ipaddress.ip_address(frame[off + 12 : off + 16])
        dst = ipaddress.ip_address(frame[off + 16 : off + 20])
        seg = frame[off + ihl : off + total]
    elif etype == 0x86DD:
        plen = struct.unpack("!H", frame[off + 4 : off + 6])[0]
        if frame[off + 6] != 6:
            return None
        src = ipaddress.ip_address(frame[off + 8 : off + 24])
        dst = ipaddress.ip_address(frame[off + 24 : off + 40])
        seg = frame[off + 40 : off + 40 + plen]
    else:
        return None
    sport, dport, seq = struct.unpack("!HHI", seg[:8])
    doff = (seg[12] >> 4) * 4
    flags = seg[13]
    return src, dst, sport, dport, seq, flags, seg[doff:]


class Flow:
    """One direction of one TCP connection."""

    def __init__(self, src, dst, sport, dport, isn):
        self.src, self.dst, self.sport, self.dport = src, dst, sport, dport
        self.isn = isn
        self.segments = []  # (relative offset, payload, timestamp)

    def stream(self):
        """Reassemble the byte stream; return (bytes, per-byte timestamps as (end offset, ts) list)."""
        buf = bytearray()
        marks = []
        for rel, payload, ts in sorted(self.segments, key=lambda s: (s[0], s[2])):
            if rel > len(buf):
                print(
                    "extract.py: gap in %s:%d -> %s:%d at %d, stream cut"
                    % (self.src, self.sport, self.dst, self.dport, len(buf)),
                    file=sys.stderr,
                )
                break
            new = payload[len(buf) - rel :]
            if new:
                buf += new
                marks.append((len(buf), ts))
        return bytes(buf), marks


def read_flows(pcap):
    """Group TCP segments into flows; a SYN on a known 4-tuple starts a new connection."""
    flows = {}  # 4-tuple -> current Flow
    ordered = []
    for ts, frame in read_pcap(pcap):
        parsed = parse_frame(frame)
        if parsed is None:
            continue
        src, dst, sport, dport, seq, flags, payload = parsed
        key = (src, sport, dst, dport)
        if flags & 0x02:  # SYN
            flow = Flow(src, dst, sport, dport, seq)
            flow.start = ts
            flows[key] = flow
            ordered.append(flow)
            continue
        flow = flows.get(key)
        if flow is None or not payload:
            continue
        flow.segments.append(((seq - flow.isn - 1) % (1 << 32), payload, ts))
    return ordered


def split_messages(flow):
    """Split a flow's stream into whole BGP messages: list of (bytes, timestamp of last byte)."""
    buf, marks = flow.stream()
    out = []
    pos = 0
    while pos + 19 <= len(buf):
        if buf[pos : pos + 16] != MARKER:
            sys.exit("extract.py: bad marker at offset %d of %s:%d" % (pos, flow.src, flow.sport))
        length = struct.unpack("!H", buf[pos + 16 : pos + 18])[0]
        if length < 19:
            sys.exit("extract.py: bad length %d at offset %d" % (length, pos))
        if pos + length > len(buf):
            break  # cut at the end of the capture
        end = pos + length
        ts = next(t for e, t in marks if e >= end)
        out.append((buf[pos:end], ts))
        pos = end
    return out


# ----------------------------------------------------------------------------- BGP decoding


def open_caps(msg):
    """Capabilities of an OPEN message: list of (code, value bytes)."""
    body = msg[19:]
    optlen = body[9]
    params = body[10:]
    if optlen == 255 and params[:1] == b"\xff":  # RFC 9072 extended optional parameters
        optlen = struct.unpack("!H", params[1:3])[0]
        params = params[3 : 3 + optlen]
        ext = True
    else:
        params = params[:optlen]
        ext = False
    caps = []
    pos = 0
    while pos < len(params):
        ptype = params[pos]
        if ext:
            plen = struct.unpack("!H", params[pos + 1 : pos + 3])[0]
            value = params[pos + 3 : pos + 3 + plen]
            pos += 3 + plen
        else:
            plen = params[pos + 1]
            value = params[pos + 2 : pos + 2 + plen]
            pos += 2 + plen
        if ptype != 2:
            continue
        cpos = 0
        while cpos + 2 <= len(value):
            code, clen = value[cpos], value[cpos + 1]
            caps.append((code, value[cpos + 2 : cpos + 2 + clen]))
            cpos += 2 + clen
    return caps


def addpath_modes(caps):
    """Map family name -> send/receive bits (1 receive, 2 send) from the add-path capability."""
    modes = {}
    for code, value in caps:
        if code != 69:
            continue
        for i in range(0, len(value) - 3, 4):
            afi, safi, mode = struct.unpack("!HBB", value[i : i + 4])
            modes[FAMILIES.get((afi, safi), "afi%d-safi%d" % (afi, safi))] = mode
    return modes


def context(sender_open, receiver_open):
    """What the session negotiated, as seen by a decoder of messages from sender to receiver."""
    sc, rc = open_caps(sender_open), open_caps(receiver_open)
    scodes, rcodes = {c for c, _ in sc}, {c for c, _ in rc}
    smode, rmode = addpath_modes(sc), addpath_modes(rc)
    addpath = sorted(f for f in smode if smode[f] & 2 and rmode.get(f, 0) & 1)
    return {
        "as4": 65 in scodes and 65 in rcodes,
        "addpath-rx": addpath,
        "extended-message": 6 in scodes and 6 in rcodes,
    }


def context_line(ctx):
    return "as4=%s addpath-rx=%s extended-message=%s" % (
        str(ctx["as4"]).lower(),
        ",".join(ctx["addpath-rx"]) or "none",
        str(ctx["extended-message"]).lower(),
    )


def update_parts(msg):
    body = msg[19:]
    wlen = struct.unpack("!H", body[:2])[0]
    withdrawn = body[2 : 2 + wlen]
    alen = struct.unpack("!H", body[2 + wlen : 4 + wlen])[0]
    attrs_raw = body[4 + wlen : 4 + wlen + alen]
    nlri = body[4 + wlen + alen :]
    attrs = []
    pos = 0
    while pos < len(attrs_raw):
        flags, code = attrs_raw[pos], attrs_raw[pos + 1]
        if flags & 0x10:
            length = struct.unpack("!H", attrs_raw[pos + 2 : pos + 4])[0]
            pos += 4
        else:
            length = attrs_raw[pos + 2]
            pos += 3
        attrs.append((code, attrs_raw[pos : pos + length]))
        pos += length
    return withdrawn, attrs, nlri


def classify(msg):
    """Return (kind, detail) for a message; detail is a list of name parts."""
    mtype = msg[18]
    if mtype == 1:
        return "open", []
    if mtype == 4:
        return "keepalive", []
    if mtype == 3:
        code, sub = msg[19], msg[20]
        if code == 6:
            return "notification", ["cease", CEASE.get(sub, "subcode%d" % sub)]
        return "notification", [NOTIFY.get(code, "code%d" % code), "subcode%d" % sub]
    if mtype == 5:
        afi, sub, safi = struct.unpack("!HBB", msg[19:23])
        fam = FAMILIES.get((afi, safi), "afi%d-safi%d" % (afi, safi))
        return "route-refresh", [fam] + ({1: ["borr"], 2: ["eorr"]}.get(sub, [] if sub == 0 else ["subtype%d" % sub]))
    if mtype == 2:
        withdrawn, attrs, nlri = update_parts(msg)
        codes = {c for c, _ in attrs}
        if not withdrawn and not attrs and not nlri:
            return "eor", ["ipv4"]
        reach = [v for c, v in attrs if c == 14]
        unreach = [v for c, v in attrs if c == 15]
        if codes == {15} and len(unreach[0]) == 3 and not withdrawn and not nlri:
            afi, safi = struct.unpack("!HB", unreach[0])
            return "eor", [FAMILIES.get((afi, safi), "afi%d" % afi)]
        if not nlri and not reach:
            if withdrawn:
                return "withdraw", ["ipv4"]
            afi, safi = struct.unpack("!HB", unreach[0][:3])
            return "unreach", [FAMILIES.get((afi, safi), "afi%d" % afi)]
        if reach:
            afi, safi, nhlen = struct.unpack("!HBB", reach[0][:4])
            detail = [FAMILIES.get((afi, safi), "afi%d" % afi)]
            if afi == 2 and nhlen == 32:
                detail.append("nh32")
        else:
            detail = ["ipv4"]
        detail += [tag for code, tag in ATTR_TAGS if code in codes]
        if withdrawn or unreach:
            detail.append("withdraw")
        return "update", detail
    return "type%d" % mtype, []


# ----------------------------------------------------------------------------- config snippets


def top_blocks(text):
    """Split a brace-structured config into top-level blocks (BIRD, ExaBGP)."""
    blocks, cur, depth = [], [], 0
    for line in text.splitlines():
        if not cur and not line.strip():
            continue
        cur.append(line)
        depth += line.count("{") - line.count("}")
        if depth == 0:
            blocks.append("\n".join(cur))
            cur = []
    return blocks


def config_snippet(impl, peer_addrs, kind, configs):
    """The part of the sender's configuration that made a message towards these peer addresses."""
    def has_peer(text):
        return any(re.search(r"(?<![0-9a-f:.])%s(?![0-9a-f:.])" % re.escape(a), text) for a in peer_addrs)

    if impl == "bird":
        text = open(os.path.join(configs, "bird.conf")).read()
        blocks = top_blocks(text)
        chosen = [b for b in blocks if b.startswith("template") or (b.startswith("protocol bgp") and has_peer(b))]
        used = " ".join(chosen)
        chosen += [b for b in blocks if b.startswith("filter") and b.split()[1] in used]
        if kind in ("update", "withdraw", "unreach"):
            chosen += [b for b in blocks if b.startswith("protocol static")]
        return "\n".join(chosen)
    if impl == "frr":
        text = open(os.path.join(configs, "frr", "frr.conf")).read()
        keep = []
        for line in text.splitlines():
            s = line.strip()
            if s.startswith("neighbor"):
                if has_peer(s):
                    keep.append(line)
            elif s and s != "!" and not s.startswith("log file"):
                keep.append(line)
        return "\n".join(keep)
    if impl == "gobgp":
        text = open(os.path.join(configs, "gobgp.toml")).read()
        parts = re.split(r"\n(?=\[\[neighbors\]\]\n)", text)
        return "\n".join([parts[0].strip()] + [p.strip() for p in parts[1:] if has_peer(p)])
    if impl == "exabgp":
        text = open(os.path.join(configs, "exabgp.conf")).read()
        blocks = top_blocks(text)
        return "\n".join(b for b in blocks if b.startswith("template") or (b.startswith("neighbor") and has_peer(b)))
    return ""


# ----------------------------------------------------------------------------- tshark


def frame_bytes(src, dst, sport, dport, seq, payload):
    """A synthetic Ethernet/IP/TCP frame carrying payload (PSH|ACK)."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 1, 5 << 4, 0x18, 65535, 0, 0) + payload
    if src.version == 4:
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, src.packed, dst.packed)
        csum = sum(struct.unpack("!10H", hdr))
        while csum >> 16:
            csum = (csum & 0xFFFF) + (csum >> 16)
        hdr = hdr[:10] + struct.pack("!H", ~csum & 0xFFFF) + hdr[12:]
        etype = 0x0800
    else:
        hdr = struct.pack("!IHBB16s16s", 6 << 28, len(tcp), 6, 64, src.packed, dst.packed)
        etype = 0x86DD
    eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + struct.pack("!H", etype)
    return eth + hdr + tcp


def tshark_decode(conn, direction, msg):
    """tshark -V text of msg, dissected after the session's two OPENs."""
    fwd, rev = (conn["a"], conn["b"]) if direction == "a" else (conn["b"], conn["a"])
    frames = []
    seq_f, seq_r = 1000, 5000
    if msg[18] != 1 and fwd["open"] is not None and rev["open"] is not None:
        frames.append(frame_bytes(fwd["src"], fwd["dst"], fwd["sport"], fwd["dport"], seq_f, fwd["open"]))
        seq_f += len(fwd["open"])
        frames.append(frame_bytes(rev["src"], rev["dst"], rev["sport"], rev["dport"], seq_r, rev["open"]))
    frames.append(frame_bytes(fwd["src"], fwd["dst"], fwd["sport"], fwd["dport"], seq_f, msg))
    with tempfile.NamedTemporaryFile(suffix=".pcap", delete=False) as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", 1700000000 + i, 0, len(fr), len(fr)) + fr)
        name = f.name
    try:
        out = subprocess.run(
            ["tshark", "-r", name, "-V", "-Y", "frame.number == %d" % len(frames), "-d", "tcp.port==179,bgp"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(name)
    lines = out.splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith("Border Gateway Protocol")), None)
    if start is None:
        return ["(tshark did not dissect this message)"]
    # Drop the per-bit breakdown of flag fields ("0... .... = Optional: Not set"): noise here.
    bits = re.compile(r"^\s*[01.]{4} [01.]{4}( [01.]{4} [01.]{4})* = ")
    lines = [l.rstrip() for l in lines[start:] if l.strip() and not bits.match(l)]
    if len(lines) > 80:
        lines = lines[:80] + ["... (%d more lines)" % (len(lines) - 80)]
    return lines


# ----------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pcap", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--peer", action="append", default=[], help="ADDRESS=IMPL")
    ap.add_argument("--version", action="append", default=[], help="IMPL=NAME VERSION")
    ap.add_argument("--configs", required=True, help="directory with bird.conf, frr/frr.conf, ...")
    ap.add_argument("--actions", help="log of scenario steps: 'UNIXTIME text' per line")
    args = ap.parse_args()

    who = {ipaddress.ip_address(a): i for a, i in (p.split("=", 1) for p in args.peer)}
    addrs = {}
    for a, i in who.items():
        addrs.setdefault(i, []).append(str(a))
    versions = dict(v.split("=", 1) for v in args.version)
    actions = []
    if args.actions and os.path.exists(args.actions):
        for line in open(args.actions):
            ts, _, text = line.strip().partition(" ")
            actions.append((float(ts), text))

    # Pair the two directions of each connection.
    flows = read_flows(args.pcap)
    conns = []
    pending = {}
    for fl in flows:
        rkey = (fl.dst, fl.dport, fl.src, fl.sport)
        if rkey in pending:
            conns.append((pending.pop(rkey), fl))
        else:
            pending[(fl.src, fl.sport, fl.dst, fl.dport)] = fl

    messages = []  # (ts, conn, direction, msg)
    total = 0
    for fa, fb in conns:
        conn = {}
        for name, fl in (("a", fa), ("b", fb)):
            msgs = split_messages(fl)
            total += len(msgs)
            opens = [m for m, _ in msgs if m[18] == 1]
            conn[name] = {
                "src": fl.src, "dst": fl.dst, "sport": fl.sport, "dport": fl.dport,
                "open": opens[0] if opens else None, "msgs": msgs,
            }
        for name in ("a", "b"):
            for m, ts in conn[name]["msgs"]:
                messages.append((ts, conn, name, m))
    messages.sort(key=lambda x: x[0])
    print("extract.py: %d connections, %d whole messages" % (len(conns), total), file=sys.stderr)

    written = []
    seen_names = set()
    seen_bytes = set()
    for ts, conn, direction, msg in messages:
        fwd = conn[direction]
        rev = conn["b" if direction == "a" else "a"]
        sender, receiver = who.get(fwd["src"]), who.get(fwd["dst"])
        if sender is None or receiver is None:
            continue
        if fwd["open"] is None or rev["open"] is None:
            continue  # session never got past OPEN: context unknown
        ctx = context(fwd["open"], rev["open"])
        kind, detail = classify(msg)
        transport = "ipv%d" % fwd["src"].version
        if kind == "keepalive":
            name = "%s-keepalive" % sender
        elif kind == "eor":
            name = "-".join([sender, kind] + detail)
        else:
            name = "-".join([sender, kind] + detail + ["to", receiver, "over", transport.replace("ip", "")])
        # Context matters only to OPEN/UPDATE decoding; other kinds are kept once per sender.
        # One vector per sender and shape: the same kind of message to another receiver is kept
        # only when the negotiated context differs (OPENs are kept per receiver).
        if kind in ("open", "update", "withdraw", "unreach"):
            key = (sender, kind, tuple(detail), context_line(ctx), receiver if kind == "open" else "")
        else:
            key = (sender, msg)
        if name in seen_names or key in seen_bytes:
            continue
        seen_names.add(name)
        seen_bytes.add(key)

        recent = [t for a, t in actions if a <= ts]
        trigger = recent[-1] if recent and ts - [a for a, _ in actions if a <= ts][-1] < 6 else None
        if kind == "open" or trigger is None:
            trigger = "session establishment (initial exchange after the TCP connection opened)"

        head = [
            "sender: %s (%s %s, port %d)" % (versions.get(sender, sender), sender, fwd["src"], fwd["sport"]),
            "receiver: %s (%s %s, port %d)" % (versions.get(receiver, receiver), receiver, fwd["dst"], fwd["dport"]),
            "direction: %s -> %s, transport %s" % (sender, receiver, "IPv4" if transport == "ipv4" else "IPv6"),
            "message: %s, %d bytes" % (MSG_TYPES.get(msg[18], "type %d" % msg[18]).upper(), len(msg)),
            "trigger: %s" % trigger,  # the scenario command issued last before the message
            "negotiated: 4-octet AS %s; add-path path ids in this direction: %s; extended messages %s"
            % (
                "yes" if ctx["as4"] else "no",
                ",".join(ctx["addpath-rx"]) or "none",
                "yes" if ctx["extended-message"] else "no",
            ),
            "context: " + context_line(ctx),
            "config (sender, relevant part):",
        ]
        head += ["  " + l for l in config_snippet(sender, addrs.get(receiver, []), kind, args.configs).splitlines()]
        head += ["decode (tshark -V, shortened):"]
        head += ["  " + l for l in tshark_decode(conn, direction, msg)]
        hexs = msg.hex()
        body = [hexs[i : i + 64] for i in range(0, len(hexs), 64)]
        path = os.path.join(args.out, name + ".hex")
        with open(path, "w") as f:
            f.write("".join(("# " + l).rstrip() + "\n" for l in head))
            f.write("\n".join(body) + "\n")
        written.append(name)

    per = {}
    for n in written:
        per.setdefault(n.split("-")[0], []).append(n)
    for impl in sorted(per):
        print("extract.py: %-7s %d vectors" % (impl, len(per[impl])), file=sys.stderr)
    print("extract.py: %d vectors written" % len(written), file=sys.stderr)


if __name__ == "__main__":
    main()
