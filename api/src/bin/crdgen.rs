//! `crdgen DIR` writes Berth's CRDs into DIR and the configuration reference rendered from them
//! into `docs/reference.md` beside DIR's parent (`deploy/crds` → `docs/reference.md`), or into
//! the file given by `--reference FILE`. `crdgen --check DIR` exits 1 when any committed file
//! differs from what the code generates (CI runs this so neither the YAML nor the docs go stale).
//!
//! Either way it first checks every CRD as a kube-apiserver would (`api::crd::acceptance`:
//! defaults valid against their own schema, formats Kubernetes knows, integer bounds that fit
//! their format, CEL rules of bounded cost); on any problem it lists them, writes nothing and
//! exits 1.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Writes `want` to `path`, or with `check` compares and reports; returns whether it was fresh.
fn sync(check: bool, path: &Path, want: &str, regenerate: &str) -> Result<bool, String> {
    if check {
        let have = std::fs::read_to_string(path).unwrap_or_default();
        if have != want {
            eprintln!("{} is stale: run `{regenerate}`", path.display());
            return Ok(false);
        }
    } else {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(path, want).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(true)
}

fn run(check: bool, dir: &Path, reference: &Path) -> Result<bool, String> {
    let regenerate = format!("cargo run -p api --bin crdgen -- {}", dir.display());
    let crds = api::crd::all();
    let problems: Vec<_> = crds
        .iter()
        .flat_map(|(_, crd)| api::crd::acceptance::check(crd))
        .collect();
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("{problem}");
        }
        eprintln!(
            "{} problem(s) a kube-apiserver would refuse or warn about: fix the types in api/src/",
            problems.len()
        );
        return Ok(false);
    }
    let mut fresh = true;
    for (file, crd) in crds {
        let want = api::crd::render(&crd).map_err(|e| format!("{file}: {e}"))?;
        fresh &= sync(check, &dir.join(file), &want, &regenerate)?;
    }
    fresh &= sync(check, reference, &api::reference::render(), &regenerate)?;
    Ok(fresh)
}

/// `deploy/crds` → `docs/reference.md`: the docs folder beside DIR's parent.
fn default_reference(dir: &Path) -> PathBuf {
    let root = dir.parent().and_then(Path::parent).unwrap_or(Path::new(""));
    root.join("docs").join("reference.md")
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut reference = None;
    if let Some(i) = args.iter().position(|a| a == "--reference") {
        if i + 1 >= args.len() {
            eprintln!("usage: crdgen [--check] DIR [--reference FILE]");
            return ExitCode::from(2);
        }
        reference = Some(PathBuf::from(args.remove(i + 1)));
        args.remove(i);
    }
    let (check, dir) = match args.as_slice() {
        [flag, dir] if flag == "--check" => (true, Path::new(dir)),
        [dir] if !dir.starts_with('-') => (false, Path::new(dir)),
        _ => {
            eprintln!("usage: crdgen [--check] DIR [--reference FILE]");
            return ExitCode::from(2);
        }
    };
    let reference = reference.unwrap_or_else(|| default_reference(dir));
    match run(check, dir, &reference) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("crdgen: {e}");
            ExitCode::from(2)
        }
    }
}
