//! Criterion micro-benchmarks and whole-system benchmarks against other BGP speakers. Built by the codec, session and benchmark issues.

pub mod compare;
pub mod incluster;
pub mod layer2;
pub mod whole;

/// Where the daemons a benchmark runs come from: `target/release` when every one of
/// `binaries` is built there (the figures are release figures), else the directory of the
/// running benchmark binary (a debug build next to it).
pub fn daemon_dir(binaries: &[&str]) -> std::path::PathBuf {
    let release = testbed::incluster::repository().join("target/release");
    if binaries.iter().all(|b| release.join(b).is_file()) {
        return release;
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(std::path::Path::to_path_buf))
        .expect("the benchmark binary's directory")
}
