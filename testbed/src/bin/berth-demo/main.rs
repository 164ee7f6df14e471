//! The demo behind `./demo.sh`: brings up the `tor-pair` lab (tor1: BIRD, tor2: FRR, three
//! nodes, a client) and shows Berth on it the way a person wants to see it: the Service's
//! address, the BGP sessions, each router's multipath route for the VIP, and how the client's
//! connections spread over the nodes. Then it tears everything down — on success, on error and
//! on Ctrl-C / SIGTERM alike — or, with `--keep`, waits for Ctrl-C first and prints how to
//! explore the running lab.
//!
//! Two modes, over the same example manifests in `testbed/demo/manifests/`:
//! - cluster (the default, [`cluster`]): a real Kubernetes control plane in the lab, Berth
//!   installed from `deploy/`, `kubectl apply` of the manifests and `kubectl get` of the result;
//! - `--standalone` ([`standalone`]): no Kubernetes, the daemons read the manifests as files.
//!
//! Usage: `berth-demo [--standalone] [--keep] [--connections N] [--bin-dir DIR]` (as root).
//! The Berth binaries are taken from `--bin-dir`, by default the directory of this
//! executable; the control plane's from `BERTH_CONTROLPLANE_BIN` (or
//! `scripts/build-controlplane.sh`).

mod cluster;
mod connections;
mod console;
mod routers;
mod signals;
mod standalone;
mod topology;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The cluster: BgpConf, the address pool, the nodes and their BgpPeers.
const CLUSTER_YAML: &str = include_str!("../../../demo/manifests/cluster.yaml");
/// The Service (no address yet) and its EndpointSlice.
const SERVICE_YAML: &str = include_str!("../../../demo/manifests/service.yaml");

const USAGE: &str = "usage: berth-demo [--standalone] [--keep] [--connections N] [--bin-dir DIR]";

/// Where Berth's configuration lives during the demo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A Kubernetes control plane in the lab.
    Cluster,
    /// Manifest files, no Kubernetes.
    Standalone,
}

/// Command-line options.
#[derive(Debug)]
struct Options {
    mode: Mode,
    keep: bool,
    connections: usize,
    bin_dir: PathBuf,
}

impl Options {
    /// The Berth binary `name` in `--bin-dir`, or why it is missing.
    fn bin(&self, name: &str) -> Result<PathBuf> {
        let path = self.bin_dir.join(name);
        if !path.is_file() {
            bail!(
                "{} is missing: build it first (`cargo build -p speaker -p controller --bins`), or pass --bin-dir",
                path.display()
            );
        }
        Ok(path)
    }
}

fn parse_args() -> Result<Options> {
    let exe = std::env::current_exe().context("where is this executable")?;
    let mut options = Options {
        mode: Mode::Cluster,
        keep: false,
        connections: 300,
        bin_dir: exe.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--standalone" => options.mode = Mode::Standalone,
            "--keep" => options.keep = true,
            "--connections" => {
                options.connections = args
                    .next()
                    .context("--connections needs a number")?
                    .parse()
                    .context("--connections needs a number")?;
            }
            "--bin-dir" => {
                options.bin_dir = args.next().context("--bin-dir needs a directory")?.into();
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    Ok(options)
}

fn main() {
    let options = match parse_args() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("error: {e:#}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = signals::watch() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
    // Each mode owns its lab: whatever way it returns, the lab is dropped (torn down) first.
    let result = testbed::lab::require_root()
        .context("the demo builds network namespaces")
        .and_then(|()| match options.mode {
            Mode::Cluster => cluster::run(&options),
            Mode::Standalone => standalone::run(&options),
        });
    match options.mode {
        Mode::Cluster => println!(
            "\n==> the lab is torn down (namespaces, routers, control plane, speakers, controller)"
        ),
        Mode::Standalone => {
            println!("\n==> the lab is torn down (namespaces, routers, speakers, controller)");
        }
    }
    match result {
        Ok(()) => {}
        Err(e) if signals::interrupted() => {
            eprintln!("stopped: {e:#}");
            std::process::exit(130);
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
