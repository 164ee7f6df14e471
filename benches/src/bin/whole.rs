//! Whole-system benchmark: a receiving BIRD 2 in a namespace lab and one sender at a time
//! (Berth, BIRD 2, FRR, gobgpd). See the "Whole-system" section of `benches/README.md`.
//!
//! `whole run SCENARIO[,SCENARIO...] [--senders berth,bird,frr,gobgp] [--runs 5]
//! [--cycles 1000] [--out DIR]` measures and writes `DIR/raw/SCENARIO-SENDER.csv`;
//! `whole report [--out DIR]` builds `DIR/whole.md` and `DIR/summary.csv` from them.
//! Scenarios: 1k, 10k, 100k, 1m, 100x1k, 100k-rib, churn. Needs root and the router packages.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use benches::whole::report::{self, CHURN_HEADER, TRANSFER_HEADER};
use benches::whole::run;
use benches::whole::scenario::{self, Scenario};
use benches::whole::senders::Kind;

struct Options {
    scenarios: Vec<Scenario>,
    senders: Vec<Kind>,
    runs: usize,
    cycles: usize,
    out: PathBuf,
    wire: bool,
}

fn parse(args: &[String]) -> Result<(String, Options), String> {
    let command = args.first().cloned().ok_or("usage: whole run|report ...")?;
    let mut options = Options {
        scenarios: Vec::new(),
        senders: Kind::ALL.to_vec(),
        runs: 5,
        cycles: 1000,
        out: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/results")),
        wire: true,
    };
    let mut rest = args[1..].iter();
    while let Some(arg) = rest.next() {
        let mut value = || rest.next().cloned().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--senders" => {
                options.senders = value()?
                    .split(',')
                    .map(|s| Kind::parse(s).ok_or(format!("unknown sender {s}")))
                    .collect::<Result<_, _>>()?;
            }
            "--runs" => options.runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--cycles" => {
                options.cycles = value()?.parse().map_err(|e| format!("--cycles: {e}"))?;
            }
            "--out" => options.out = PathBuf::from(value()?),
            "--no-wire" => options.wire = false,
            _ if command == "pcap" => {}
            names => {
                for name in names.split(',') {
                    options
                        .scenarios
                        .push(scenario::parse(name).ok_or(format!("unknown scenario {name}"))?);
                }
            }
        }
    }
    Ok((command, options))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, options) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let result = match command.as_str() {
        "run" => measure(&options).and_then(|()| write_report(&options)),
        "report" => write_report(&options),
        // Counts a capture: `whole pcap FILE SENDER_ADDRESS` (checks the wire figures).
        "pcap" => pcap(&args[1..]),
        other => Err(format!("unknown command {other}").into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("whole: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes the markdown report and draws the chart with `$WHOLE_PYTHON` (default `python3`;
/// it needs matplotlib). A missing matplotlib only skips the chart.
fn write_report(options: &Options) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    report::write(&options.out)?;
    let python = std::env::var("WHOLE_PYTHON").unwrap_or_else(|_| "python3".into());
    let status = std::process::Command::new(&python)
        .arg(options.out.join("chart.py"))
        .arg(&options.out)
        .status();
    if !status.is_ok_and(|s| s.success()) {
        eprintln!("whole: chart not drawn ({python} with matplotlib needed)");
    }
    Ok(())
}

fn pcap(args: &[String]) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let [file, from] = args else {
        return Err("usage: whole pcap FILE SENDER_ADDRESS".into());
    };
    let count = benches::whole::wire::count(&std::fs::read(file)?, &[from.parse()?]);
    println!("{count:?}");
    Ok(())
}

fn measure(options: &Options) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let raw = options.out.join("raw");
    std::fs::create_dir_all(&raw)?;
    for sc in &options.scenarios {
        let mut files = Vec::new();
        for &kind in &options.senders {
            let path = raw.join(format!("{}-{}.csv", sc.name, kind.name()));
            let mut file = std::fs::File::create(&path)?;
            let header = if sc.plan.is_some() {
                TRANSFER_HEADER
            } else {
                CHURN_HEADER
            };
            writeln!(file, "{header}")?;
            files.push((kind, file));
        }
        // Round robin over the senders, so drift in the machine's load spreads evenly.
        for i in 1..=options.runs {
            for (kind, file) in &mut files {
                let result = match sc.plan {
                    Some(plan) => run::transfer(*kind, plan, options.wire, sc.fib)
                        .map(|t| report::transfer_line(i, &t)),
                    None => run::churn(*kind, options.cycles).map(|c| report::churn_line(i, &c)),
                };
                // A failed run is reported and left out; the others still count.
                let line = match result {
                    Ok(line) => line,
                    Err(e) => {
                        eprintln!("{} {} run {i} failed: {e}", sc.name, kind.name());
                        continue;
                    }
                };
                eprintln!("{} {} run {i}: {line}", sc.name, kind.name());
                writeln!(file, "{line}")?;
            }
        }
    }
    Ok(())
}
