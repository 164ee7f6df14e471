//! Real bytes from other BGP implementations: every `tests/data/*.hex` vector is decoded,
//! re-encoded to the identical bytes, and its decoded form compared with the golden file
//! `<name>.expected` beside it.
//!
//! Vector format (see `tests/data/README.md`): `#` comment lines (sender, version, config,
//! and a `# context: as4=… addpath-rx=… extended-message=…` line naming what the session
//! negotiated in that direction), then the hex of one or more whole BGP messages,
//! whitespace ignored.
//!
//! Regenerate the golden files with `BLESS=1 cargo test -p bgp --test vectors`, then read
//! the diff before committing it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use bgp::wire::{AddPathFamilies, Context, Message, frame};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("data")
}

/// The context a vector's comments describe: a line
/// `# context: as4=true addpath-rx=ipv4,ipv6 extended-message=false` (written by
/// `extract.py`). Without one, the default is a 4-octet-AS session.
fn context_of(comments: &[&str]) -> Context {
    let mut ctx = Context {
        four_octet_as: true,
        ..Context::default()
    };
    for line in comments {
        let Some((_, words)) = line.split_once("context:") else {
            continue;
        };
        for word in words.split_whitespace() {
            let Some((key, value)) = word.split_once('=') else {
                continue;
            };
            match key {
                "as4" => ctx.four_octet_as = value == "true",
                "extended-message" => ctx.extended_message = value == "true",
                "addpath-rx" => {
                    let families: Vec<&str> = value.split(',').collect();
                    ctx.add_path = AddPathFamilies {
                        ipv4_unicast: families.contains(&"ipv4"),
                        ipv6_unicast: families.contains(&"ipv6"),
                    };
                }
                _ => {}
            }
        }
    }
    ctx
}

fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err("odd number of hex digits".into());
    }
    digits
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).map_err(|e| e.to_string())?;
            u8::from_str_radix(s, 16).map_err(|e| format!("bad hex {s:?}: {e}"))
        })
        .collect()
}

/// Decodes every message of one vector, checks the re-encoding, and renders the golden text.
fn check_vector(text: &str) -> Result<(String, usize), String> {
    let comments: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with('#'))
        .collect();
    let hex: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let bytes = parse_hex(&hex)?;
    let ctx = context_of(&comments);
    let mut golden = format!("{ctx:?}\n");
    let mut rest = &bytes[..];
    let mut count = 0;
    while !rest.is_empty() {
        let len = frame(rest, ctx.max_message_len())
            .map_err(|e| format!("message {count}: framing: {e}"))?
            .ok_or_else(|| format!("message {count}: truncated ({} bytes left)", rest.len()))?;
        let one = &rest[..len];
        let message =
            Message::decode(one, &ctx).map_err(|e| format!("message {count}: decode: {e:?}"))?;
        if let Message::Update(u) = &message
            && let Some(err) = &u.error
        {
            return Err(format!(
                "message {count}: RFC 7606 outcome on real bytes: {err:?}"
            ));
        }
        let again = message
            .to_bytes(&ctx)
            .map_err(|e| format!("message {count}: encode: {e}"))?;
        if again[..] != one[..] {
            return Err(format!(
                "message {count}: re-encoding differs\n  received {}\n  encoded  {}",
                to_hex(one),
                to_hex(&again)
            ));
        }
        let _ = writeln!(golden, "\n{message:#?}");
        rest = &rest[len..];
        count += 1;
    }
    if count == 0 {
        return Err("no messages".into());
    }
    Ok((golden, count))
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn every_captured_vector_decodes_reencodes_identically_and_matches_its_golden_file() {
    let bless = std::env::var_os("BLESS").is_some_and(|v| v == "1");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(data_dir())
        .expect("tests/data exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "hex"))
        .collect();
    paths.sort();
    assert!(
        !paths.is_empty(),
        "no test vectors in {}: capture them with bgp/tests/data/capture.sh",
        data_dir().display()
    );
    let mut failures = Vec::new();
    let mut messages = 0;
    for path in &paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(path).expect("readable vector");
        let (golden, count) = match check_vector(&text) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        messages += count;
        let expected_path = path.with_extension("expected");
        if bless {
            std::fs::write(&expected_path, &golden).expect("write golden file");
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected == golden => {}
            Ok(_) => failures.push(format!(
                "{name}: decoded form differs from {} (run with BLESS=1 and review the diff)",
                expected_path.display()
            )),
            Err(_) => failures.push(format!(
                "{name}: no golden file {}; run `BLESS=1 cargo test -p bgp --test vectors` and review it",
                expected_path.display()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} vectors failed:\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n")
    );
    assert!(messages >= paths.len());
    // Issue 2: at least 24 vectors, at least 5 from each of the four implementations.
    assert!(paths.len() >= 24, "only {} vectors", paths.len());
    for sender in ["bird", "frr", "gobgp", "exabgp"] {
        let n = paths
            .iter()
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{sender}-")))
            })
            .count();
        assert!(n >= 5, "only {n} vectors from {sender}");
    }
}
