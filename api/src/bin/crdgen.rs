//! `crdgen DIR` writes Berth's CRDs into DIR; `crdgen --check DIR` exits 1 when the committed
//! files differ from what the code generates (CI runs this so the YAML never goes stale).

use std::path::Path;
use std::process::ExitCode;

fn run(check: bool, dir: &Path) -> Result<bool, String> {
    let mut fresh = true;
    if !check {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    for (file, crd) in api::crd::all() {
        let path = dir.join(file);
        let want = api::crd::render(&crd).map_err(|e| format!("{file}: {e}"))?;
        if check {
            let have = std::fs::read_to_string(&path).unwrap_or_default();
            if have != want {
                eprintln!(
                    "{} is stale: run `cargo run -p api --bin crdgen -- {}`",
                    path.display(),
                    dir.display()
                );
                fresh = false;
            }
        } else {
            std::fs::write(&path, want).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(fresh)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (check, dir) = match args.as_slice() {
        [flag, dir] if flag == "--check" => (true, dir),
        [dir] if !dir.starts_with('-') => (false, dir),
        _ => {
            eprintln!("usage: crdgen [--check] DIR");
            return ExitCode::from(2);
        }
    };
    match run(check, Path::new(dir)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("crdgen: {e}");
            ExitCode::from(2)
        }
    }
}
