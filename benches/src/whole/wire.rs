//! Bytes and UPDATE messages on the wire: `tcpdump` captures port 179 on the receiver's link,
//! and this module reassembles each sender-to-receiver TCP stream from the pcap file and walks
//! its BGP messages (19-byte headers carry length and type).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use testbed::Netns;
use testbed::lab::Process;

/// What the senders put on the wire towards the receiver.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WireCount {
    /// UPDATE messages.
    pub updates: u64,
    /// Bytes of UPDATE messages (headers included).
    pub update_bytes: u64,
    /// Every BGP byte from sender to receiver (OPEN, KEEPALIVE, UPDATE...).
    pub bytes: u64,
    /// Capture time of the segment that completed the first route-carrying UPDATE (ns since
    /// the epoch; End-of-RIB markers do not count).
    pub first_update_ns: Option<u64>,
    /// Capture time of the segment that completed the last route-carrying UPDATE.
    pub last_update_ns: Option<u64>,
}

/// A running capture.
pub struct Capture {
    process: Process,
    file: PathBuf,
}

impl Capture {
    /// Starts `tcpdump` on `ifname` in `netns`, writing to `file`, and waits until it listens.
    pub fn start(netns: &Netns, ifname: &str, file: &Path) -> testbed::Result<Capture> {
        let log = file.with_extension("log");
        let out = std::fs::File::create(&log).map_err(|e| testbed::Error::io("capture log", e))?;
        let mut command = netns.command("tcpdump");
        command
            .args([
                "-i",
                ifname,
                "--immediate-mode",
                "-U",
                "-s",
                "0",
                "-B",
                "32768",
                "-n",
                "-w",
            ])
            .arg(file)
            .args(["tcp", "port", "179"])
            .stdout(Stdio::null())
            .stderr(Stdio::from(out));
        let process = Process::spawn("tcpdump", command)?;
        testbed::wait::until("tcpdump listening", Duration::from_secs(10), || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            Ok(text.contains("listening on").then_some(()))
        })?;
        Ok(Capture {
            process,
            file: file.to_path_buf(),
        })
    }

    /// Stops the capture (SIGINT flushes the file) and counts what `from` sent.
    pub fn finish(mut self, from: &[Ipv4Addr]) -> std::io::Result<WireCount> {
        let _ = self.process.signal(libc::SIGINT);
        self.process.wait_exit(Duration::from_secs(5));
        self.process.kill();
        let data = std::fs::read(&self.file)?;
        if let Some(keep) = std::env::var_os("WHOLE_KEEP_PCAP") {
            let _ = std::fs::copy(&self.file, &keep);
            let _ = std::fs::copy(
                self.file.with_extension("log"),
                std::path::Path::new(&keep).with_extension("log"),
            );
        }
        Ok(count(&data, from))
    }
}

/// Counts the BGP messages the addresses `from` sent (source port 179: the senders are passive) in a pcap
/// file of Ethernet frames.
pub fn count(pcap: &[u8], from: &[Ipv4Addr]) -> WireCount {
    type Segments = BTreeMap<u32, (u64, Vec<u8>)>;
    let mut streams: BTreeMap<(Ipv4Addr, u16), Segments> = BTreeMap::new();
    for (time, frame) in frames(pcap) {
        if let Some((dst, dport, seq, payload)) = tcp_payload(frame, from)
            && !payload.is_empty()
        {
            streams
                .entry((dst, dport))
                .or_default()
                .entry(seq)
                .or_insert_with(|| (time, payload.to_vec()));
        }
    }
    let mut total = WireCount::default();
    for segments in streams.values() {
        let (stream, ends) = reassemble(segments);
        // When the byte at stream offset `end - 1` was captured.
        let time_of = |end: usize| ends.iter().find(|(e, _)| *e >= end).map(|(_, t)| *t);
        let mut at = 0;
        while at + 19 <= stream.len() {
            let len = usize::from(u16::from_be_bytes([stream[at + 16], stream[at + 17]]));
            if len < 19 {
                break;
            }
            if stream[at + 18] == 2 {
                total.updates += 1;
                total.update_bytes += len as u64;
                // 23 bytes: an empty UPDATE, the IPv4 End-of-RIB marker.
                if len > 23 && at + len <= stream.len() {
                    let t = time_of(at + len);
                    total.first_update_ns = min_some(total.first_update_ns, t);
                    total.last_update_ns = total.last_update_ns.max(t);
                }
            }
            total.bytes += len.min(stream.len() - at) as u64;
            at += len;
        }
    }
    total
}

fn min_some(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Concatenates segments in sequence order, skipping retransmitted overlaps; also returns,
/// per segment, the stream offset where it ends and its capture time.
fn reassemble(segments: &BTreeMap<u32, (u64, Vec<u8>)>) -> (Vec<u8>, Vec<(usize, u64)>) {
    let mut out = Vec::new();
    let mut ends = Vec::new();
    let mut next: Option<u32> = None;
    for (&seq, (time, data)) in segments {
        let start = next.unwrap_or(seq);
        let skip = start.wrapping_sub(seq) as usize;
        if skip < data.len() {
            out.extend_from_slice(&data[skip..]);
            ends.push((out.len(), *time));
            next = Some(seq.wrapping_add(data.len() as u32));
        }
    }
    (out, ends)
}

/// The frames (with capture time, ns since the epoch) of a little- or big-endian
/// microsecond/nanosecond pcap file.
fn frames(pcap: &[u8]) -> Vec<(u64, &[u8])> {
    let mut out = Vec::new();
    if pcap.len() < 24 {
        return out;
    }
    let little = matches!(
        pcap[0..4],
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1]
    );
    let nanos = matches!(
        pcap[0..4],
        [0x4d, 0x3c, 0xb2, 0xa1] | [0xa1, 0xb2, 0x3c, 0x4d]
    );
    let read = |b: &[u8]| {
        let a = [b[0], b[1], b[2], b[3]];
        if little {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let caplen = read(&pcap[at + 8..]) as usize;
        let start = at + 16;
        if start + caplen > pcap.len() {
            break;
        }
        let secs = u64::from(read(&pcap[at..]));
        let fraction = u64::from(read(&pcap[at + 4..]));
        let time = secs * 1_000_000_000 + if nanos { fraction } else { fraction * 1_000 };
        out.push((time, &pcap[start..start + caplen]));
        at = start + caplen;
    }
    out
}

/// Destination, destination port, sequence number and payload of an IPv4 TCP segment from
/// one of `from`, port 179.
fn tcp_payload<'a>(frame: &'a [u8], from: &[Ipv4Addr]) -> Option<(Ipv4Addr, u16, u32, &'a [u8])> {
    if frame.len() < 14 + 20 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if ip[9] != 6 || ip.len() < ihl + 20 {
        return None;
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let tcp = ip.get(ihl..total.min(ip.len()))?;
    if tcp.len() < 20 {
        return None;
    }
    let sport = u16::from_be_bytes([tcp[0], tcp[1]]);
    let dport = u16::from_be_bytes([tcp[2], tcp[3]]);
    if !from.contains(&src) || sport != 179 {
        return None;
    }
    let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
    let offset = usize::from(tcp[12] >> 4) * 4;
    Some((dst, dport, seq, tcp.get(offset..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let total = (20 + 20 + payload.len()) as u16;
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1,
        ];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&ip);
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&179u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&40000u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&seq.to_be_bytes());
        tcp[12] = 5 << 4;
        f.extend_from_slice(&tcp);
        f.extend_from_slice(payload);
        f
    }

    fn message(kind: u8, len: u16) -> Vec<u8> {
        let mut m = vec![0xff; 16];
        m.extend_from_slice(&len.to_be_bytes());
        m.push(kind);
        m.resize(usize::from(len), 0);
        m
    }

    #[test]
    fn updates_split_across_segments_and_retransmissions_count_once() {
        let mut stream = message(4, 19);
        stream.extend(message(2, 100));
        stream.extend(message(2, 50));
        let (a, b) = stream.split_at(60);
        let mut pcap = vec![0xd4, 0xc3, 0xb2, 0xa1];
        pcap.resize(24, 0);
        for (seq, part) in [(1000u32, a), (1060, b), (1000, a)] {
            let f = frame(seq, part);
            let mut rec = vec![0u8; 4];
            rec.extend_from_slice(&seq.to_le_bytes());
            rec.extend_from_slice(&(f.len() as u32).to_le_bytes());
            rec.extend_from_slice(&(f.len() as u32).to_le_bytes());
            pcap.extend(rec);
            pcap.extend(f);
        }
        let count = count(&pcap, &[Ipv4Addr::new(10, 0, 0, 2)]);
        assert_eq!(
            count,
            WireCount {
                updates: 2,
                update_bytes: 150,
                bytes: 169,
                // Microseconds in the record header: segment at 1060 completes both.
                first_update_ns: Some(1_060_000),
                last_update_ns: Some(1_060_000),
            }
        );
    }
}
