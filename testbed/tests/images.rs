//! The container images `scripts/build-images.sh` builds (OCI archives, `./test.sh` runs it
//! first), exercised without a container engine: each archive is unpacked by buildah into a
//! private store (storage driver vfs) and mounted, and its binaries run chrooted into that
//! root — `berth-controller --version` as the image's user, `berthctl --help`, and a
//! standalone `berth-speaker` in a lab namespace that brings up a session with BIRD and
//! announces a VIP, read back with the image's own `berthctl`. The image configs (user,
//! entrypoint, exposed ports, working directory, labels) and root file systems are checked
//! against the Dockerfile's final stages, so the Dockerfile and the script cannot drift; and
//! the names the archives carry are the ones the manifests and the chart reference. Then a
//! containerd of the test's own imports both archives as a node would (`ctr images import`,
//! also with `kind load image-archive`'s flags) and runs their binaries in containers (runc),
//! the speaker's also in a lab node's network namespace against BIRD, as a node would.
//! (`podman load` takes them too, but `podman run` fails in this sandbox: it has no
//! CAP_SYS_RESOURCE, and podman asks runc to raise RLIMIT_NOFILE past the hard limit.)
//!
//! The archives: `$BERTH_IMAGES_DIR`, else `images/` in this test's target directory (where
//! the script writes them). Missing archives fail these tests; they do not skip.

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde::Deserialize;

use common::{NODE_AS, ROUTER_AS, SESSION_TIMEOUT, link_addresses, star, vip4};
use testbed::lab::Process;
use testbed::router::bird::Bird;
use testbed::router::{Neighbor, Router, RouterConfig};

/// The version every image and manifest carries: the workspace's.
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

// --- the Dockerfile's description --------------------------------------------------------------

/// What a final stage of the Dockerfile says about its image.
#[derive(Debug, Default)]
struct Stage {
    base: String,
    user: String,
    workdir: String,
    /// `9090/tcp`, as OCI image configs key them.
    ports: BTreeSet<String>,
    entrypoint: Vec<String>,
    /// COPY destinations, without the leading `/`.
    copies: BTreeSet<String>,
    /// Values as written (`${VERSION}`).
    labels: BTreeMap<String, String>,
}

/// The instructions of the Dockerfile, one a line: continuations joined, comments dropped.
fn instructions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        match line.trim_end().strip_suffix('\\') {
            Some(head) => {
                pending.push_str(head);
                pending.push(' ');
            }
            None => {
                pending.push_str(line);
                let done = std::mem::take(&mut pending);
                if !done.trim().is_empty() {
                    out.push(done.trim().to_string());
                }
            }
        }
    }
    out
}

/// The final stage `FROM … AS name` of `text`.
fn stage(text: &str, name: &str) -> Stage {
    let mut stage = None::<Stage>;
    for line in instructions(text) {
        let (instruction, rest) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let rest = rest.trim();
        if instruction.eq_ignore_ascii_case("FROM") {
            let words: Vec<&str> = rest.split_whitespace().collect();
            if stage.is_some() {
                break;
            }
            if words.len() == 3 && words[1].eq_ignore_ascii_case("AS") && words[2] == name {
                stage = Some(Stage {
                    base: words[0].to_string(),
                    ..Stage::default()
                });
            }
            continue;
        }
        let Some(stage) = stage.as_mut() else {
            continue;
        };
        match instruction.to_ascii_uppercase().as_str() {
            "USER" => stage.user = rest.to_string(),
            "WORKDIR" => stage.workdir = rest.to_string(),
            "EXPOSE" => stage
                .ports
                .extend(rest.split_whitespace().map(|p| format!("{p}/tcp"))),
            "ENTRYPOINT" => stage.entrypoint = serde_json::from_str(rest).unwrap(),
            "COPY" => {
                let dest = rest.split_whitespace().last().unwrap();
                stage
                    .copies
                    .insert(dest.trim_start_matches('/').to_string());
            }
            "LABEL" => {
                for pair in rest.split_whitespace() {
                    let (key, value) = pair.split_once('=').unwrap();
                    stage
                        .labels
                        .insert(key.to_string(), value.trim_matches('"').to_string());
                }
            }
            _ => {}
        }
    }
    stage.unwrap_or_else(|| panic!("the Dockerfile has no stage {name}"))
}

/// Dockerfile stage and image name of the two images.
const IMAGES: [(&str, &str); 2] = [
    ("controller", "berth-controller"),
    ("speaker", "berth-speaker"),
];

/// What `scripts/build-images.sh` lays into every image in place of distroless/static.
const BASE_FILES: [&str; 11] = [
    "etc",
    "etc/group",
    "etc/nsswitch.conf",
    "etc/passwd",
    "etc/ssl",
    "etc/ssl/certs",
    "etc/ssl/certs/ca-certificates.crt",
    "home",
    "home/nonroot",
    "root",
    "tmp",
];

// --- the archives ------------------------------------------------------------------------------

fn images_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BERTH_IMAGES_DIR") {
        return dir.into();
    }
    // target/debug/deps/images-… → target/images
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().join("images")
}

fn archive(image: &str) -> PathBuf {
    let path = images_dir().join(format!("{image}.oci.tar"));
    assert!(
        path.is_file(),
        "{} is missing: build the images first with scripts/build-images.sh (./test.sh does)",
        path.display()
    );
    path
}

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(command: &mut Command) -> String {
    String::from_utf8(run(command).stdout).unwrap()
}

/// A directory of this test's, removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(what: &str) -> ScratchDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "berth-{what}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        ScratchDir(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An image archive unpacked by buildah into a private vfs store and mounted: `root()` is its
/// root file system. Dropping it removes the container and the store.
struct MountedImage {
    // Dropped after the container is removed (fields drop in order, after `drop`).
    store: ScratchDir,
    container: String,
    root: PathBuf,
}

impl MountedImage {
    fn buildah(store: &Path) -> Command {
        let mut command = Command::new("buildah");
        command
            .arg("--root")
            .arg(store.join("storage"))
            .arg("--runroot")
            .arg(store.join("run"))
            .args(["--storage-driver", "vfs"]);
        command
    }

    fn new(image: &str) -> MountedImage {
        let archive = archive(image);
        let store = ScratchDir::new(&format!("{image}-store"));
        let container = stdout(
            Self::buildah(&store.0)
                .args(["from", "--quiet", "--pull-never"])
                .arg(format!("oci-archive:{}", archive.display())),
        )
        .trim()
        .to_string();
        let root =
            PathBuf::from(stdout(Self::buildah(&store.0).args(["mount", &container])).trim());
        assert!(
            root.join("etc/passwd").is_file(),
            "{} is not mounted",
            root.display()
        );
        MountedImage {
            store,
            container,
            root,
        }
    }

    fn root(&self) -> &Path {
        &self.root
    }

    /// `chroot ROOT program args…` with an optional `--userspec`.
    fn chroot(&self, user: Option<&str>, program: &str) -> Command {
        let mut command = Command::new("chroot");
        if let Some(user) = user {
            command.arg(format!("--userspec={user}"));
        }
        command.arg(&self.root).arg(program);
        command
    }
}

impl Drop for MountedImage {
    fn drop(&mut self) {
        let _ = Self::buildah(&self.store.0)
            .args(["rm", &self.container])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Every path below `root`, relative to it.
fn tree(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            out.insert(
                path.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
            if path.is_dir() && !path.is_symlink() {
                dirs.push(path);
            }
        }
    }
    out
}

// --- unprivileged: the names -------------------------------------------------------------------

/// The manifests, the chart and the Dockerfile name the images the script builds:
/// `berth-controller` and `berth-speaker`, tagged with the workspace version.
#[test]
fn manifests_and_chart_name_the_images_the_script_builds() {
    let image_of = |file: &str, kind: &str| -> String {
        let text = read(&repo_file(file));
        let object = serde_yaml::Deserializer::from_str(&text)
            .map(|d| serde_yaml::Value::deserialize(d).unwrap())
            .find(|o| o["kind"].as_str() == Some(kind))
            .unwrap_or_else(|| panic!("{file} has no {kind}"));
        object["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        image_of("deploy/controller.yaml", "Deployment"),
        format!("berth-controller:{VERSION}")
    );
    assert_eq!(
        image_of("deploy/speaker.yaml", "DaemonSet"),
        format!("berth-speaker:{VERSION}")
    );

    let kustomization: serde_yaml::Value =
        serde_yaml::from_str(&read(&repo_file("deploy/kustomization.yaml"))).unwrap();
    let tags: BTreeMap<&str, &str> = kustomization["images"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|i| (i["name"].as_str().unwrap(), i["newTag"].as_str().unwrap()))
        .collect();
    assert_eq!(
        tags,
        BTreeMap::from([("berth-controller", VERSION), ("berth-speaker", VERSION)]),
        "deploy/kustomization.yaml images"
    );

    let chart: serde_yaml::Value =
        serde_yaml::from_str(&read(&repo_file("deploy/chart/Chart.yaml"))).unwrap();
    assert_eq!(
        chart["appVersion"].as_str(),
        Some(VERSION),
        "Chart.yaml appVersion"
    );
    let values: serde_yaml::Value =
        serde_yaml::from_str(&read(&repo_file("deploy/chart/values.yaml"))).unwrap();
    for (key, image) in [
        ("controller", "berth-controller"),
        ("speaker", "berth-speaker"),
    ] {
        let v = &values["images"][key];
        assert_eq!(v["repository"].as_str(), Some(image), "chart images.{key}");
        assert_eq!(
            v["tag"].as_str(),
            Some(""),
            "chart images.{key}.tag: empty means appVersion"
        );
    }

    let dockerfile = read(&repo_file("Dockerfile"));
    assert!(
        instructions(&dockerfile).contains(&format!("ARG VERSION={VERSION}")),
        "the Dockerfile's default VERSION is {VERSION}"
    );
    for (stage_name, image) in IMAGES {
        let stage = stage(&dockerfile, stage_name);
        assert_eq!(
            stage.entrypoint,
            [format!("/{image}")],
            "Dockerfile stage {stage_name}"
        );
    }
}

// --- privileged: the images --------------------------------------------------------------------

/// Each image's config is what the Dockerfile's final stage says, its labels carry the
/// version, revision and source, and its name is the one the manifests use.
#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn image_configs_match_the_dockerfile() {
    let dockerfile = read(&repo_file("Dockerfile"));
    for (stage_name, image) in IMAGES {
        let stage = stage(&dockerfile, stage_name);
        let archive = archive(image);
        let reference = format!("oci-archive:{}", archive.display());

        // The name the archive carries: Kubernetes resolves `berth-controller:0.1.0` to it.
        let index: serde_json::Value = serde_json::from_str(&stdout(
            Command::new("tar")
                .arg("-xOf")
                .arg(&archive)
                .arg("index.json"),
        ))
        .unwrap();
        let manifests = index["manifests"].as_array().unwrap();
        assert_eq!(manifests.len(), 1, "{image}: one image per archive");
        assert_eq!(
            manifests[0]["annotations"]["org.opencontainers.image.ref.name"],
            format!("docker.io/library/{image}:{VERSION}"),
            "{image}: the archive's name"
        );

        let config: serde_json::Value = serde_json::from_str(&stdout(
            Command::new("skopeo").args(["inspect", "--config", &reference]),
        ))
        .unwrap();
        assert_eq!(config["os"], "linux");
        let c = &config["config"];
        assert_eq!(c["User"], stage.user.as_str(), "{image}: USER");
        assert_eq!(c["WorkingDir"], stage.workdir.as_str(), "{image}: WORKDIR");
        let entrypoint: Vec<String> = serde_json::from_value(c["Entrypoint"].clone()).unwrap();
        assert_eq!(entrypoint, stage.entrypoint, "{image}: ENTRYPOINT");
        assert!(c["Cmd"].is_null(), "{image}: no CMD: {}", c["Cmd"]);
        let ports: BTreeSet<String> = c["ExposedPorts"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        assert_eq!(ports, stage.ports, "{image}: EXPOSE");

        let labels: BTreeMap<String, String> = serde_json::from_value(c["Labels"].clone()).unwrap();
        assert_eq!(
            labels.keys().collect::<BTreeSet<_>>(),
            stage.labels.keys().collect::<BTreeSet<_>>(),
            "{image}: LABEL keys"
        );
        assert_eq!(
            labels["org.opencontainers.image.version"], VERSION,
            "{image}: version label"
        );
        let revision = &labels["org.opencontainers.image.revision"];
        let commit = revision.strip_suffix("-dirty").unwrap_or(revision);
        assert!(
            commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
            "{image}: revision label {revision:?} is not a git commit"
        );
        assert!(
            !labels["org.opencontainers.image.source"].is_empty(),
            "{image}: source label"
        );
        println!(
            "{image}: user {}, entrypoint {:?}, ports {ports:?}, labels {labels:?}",
            stage.user, entrypoint
        );
    }
}

/// Each image's root holds exactly distroless/static's files and the Dockerfile's COPYs, the
/// binaries are static and run chrooted into it, the controller as the image's user. Prints
/// the sizes.
#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn image_roots_hold_the_dockerfiles_files_and_run_the_binaries() {
    let dockerfile = read(&repo_file("Dockerfile"));
    for (stage_name, image) in IMAGES {
        let stage = stage(&dockerfile, stage_name);
        assert!(
            stage.base.starts_with("gcr.io/distroless/static-debian12:"),
            "stage {stage_name}: the script stands in for distroless/static only"
        );
        let mounted = MountedImage::new(image);
        let root = mounted.root();

        let mut expected: BTreeSet<String> = BASE_FILES.iter().map(|f| f.to_string()).collect();
        expected.extend(stage.copies.iter().cloned());
        assert_eq!(tree(root), expected, "{image}: the files in the image");

        let passwd = read(&root.join("etc/passwd"));
        assert!(
            passwd
                .lines()
                .any(|l| l.starts_with("nonroot:x:65532:65532:")),
            "{image}: /etc/passwd: {passwd}"
        );
        assert!(passwd.lines().any(|l| l.starts_with("root:x:0:0:")));
        let group = read(&root.join("etc/group"));
        assert!(
            group.lines().any(|l| l == "nonroot:x:65532:"),
            "{image}: /etc/group: {group}"
        );
        let certs = read(&root.join("etc/ssl/certs/ca-certificates.crt"));
        assert!(
            certs.matches("BEGIN CERTIFICATE").count() > 10,
            "{image}: CA bundle"
        );
        let tmp = std::fs::metadata(root.join("tmp")).unwrap();
        assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777, "{image}: /tmp");
        let home = std::fs::metadata(root.join("home/nonroot")).unwrap();
        assert_eq!(
            (home.uid(), home.gid()),
            (65532, 65532),
            "{image}: /home/nonroot"
        );

        for binary in &stage.copies {
            let path = root.join(binary);
            let kind = stdout(Command::new("file").arg("-b").arg(&path));
            assert!(
                !kind.contains("dynamically linked") && kind.contains("static"),
                "{image}: /{binary} is not static: {kind}"
            );
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o755
            );
        }

        // The entrypoint, chrooted, as the image's user.
        let entry = &stage.entrypoint[0];
        let version = stdout(mounted.chroot(Some(&stage.user), entry).arg("--version"));
        assert!(
            version.contains(VERSION),
            "{image}: {entry} --version says {version:?}"
        );
        if stage.copies.contains("berthctl") {
            let help = stdout(mounted.chroot(Some(&stage.user), "/berthctl").arg("--help"));
            assert!(help.contains("Usage:"), "{image}: berthctl --help: {help}");
        }

        let archive_bytes = std::fs::metadata(archive(image)).unwrap().len();
        let unpacked_bytes: u64 = tree(root)
            .iter()
            .map(|p| std::fs::symlink_metadata(root.join(p)).unwrap())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum();
        println!(
            "{image}: archive {archive_bytes} bytes ({:.1} MB), unpacked files {unpacked_bytes} bytes ({:.1} MB)",
            archive_bytes as f64 / 1e6,
            unpacked_bytes as f64 / 1e6
        );
    }
}

/// BgpConf, the node, a BgpPeer to the router, and a Service with VIP 10.0.0.100 whose
/// endpoint is on n1.
fn speaker_manifests() -> String {
    let (r4, n4, _, _) = link_addresses(1);
    format!(
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpConf\nmetadata: {{name: default}}\nspec: {{as: {NODE_AS}}}\n---\n\
         apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {{name: pool4}}\nspec: {{address: 10.0.0.96/28}}\n---\n\
         apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n  labels: {{kubernetes.io/hostname: n1}}\n\
         status:\n  addresses: [{{type: InternalIP, address: {n4}}}]\n---\n\
         apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpPeer\nmetadata: {{name: r}}\nspec:\n  \
         conf: {{peerAs: {ROUTER_AS}, neighborAddress: \"{r4}\"}}\n  \
         timers: {{config: {{holdTime: \"9\", connectRetry: \"1\"}}}}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {{namespace: web, name: demo}}\nspec:\n  type: LoadBalancer\n  \
         loadBalancerClass: berth.io/lb\n  externalTrafficPolicy: Cluster\n  ports: [{{port: 80}}]\n\
         status:\n  loadBalancer:\n    ingress: [{{ip: \"{vip}\"}}]\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  namespace: web\n  name: demo-1\n  \
         labels: {{kubernetes.io/service-name: demo}}\naddressType: IPv4\nendpoints:\n\
         - addresses: [10.244.1.5]\n  nodeName: n1\n  conditions: {{ready: true}}\n",
        vip = vip4().ip()
    )
}

/// The speaker image's `berth-speaker`, chrooted into the image in a lab node, reads its
/// manifests from the image's /tmp, brings up a session with BIRD and announces the VIP with
/// the node as next hop; the image's `berthctl` shows the session.
#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn speaker_image_announces_a_vip_to_bird() {
    let mounted = MountedImage::new("berth-speaker");
    let root = mounted.root();
    let state = root.join("tmp/state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("cluster.yaml"), speaker_manifests()).unwrap();

    let lab = star("img-spk", 1);
    let (_, n4, _, _) = link_addresses(1);
    let config = RouterConfig::new("r", "10.255.0.1".parse().unwrap(), ROUTER_AS)
        .neighbor(Neighbor::new(n4, NODE_AS));
    let bird = Bird::start(lab.netns("r").unwrap(), &config).unwrap();

    let netns = lab.netns("n1").unwrap();
    let log_path = lab.dir().join("n1-speaker.log");
    let mut command = netns.command("chroot");
    command
        .arg(root)
        .args([
            "/berth-speaker",
            "--node-name",
            "n1",
            "--state-dir",
            "/tmp/state",
        ])
        .args(["--drain-seconds", "0", "--log-format", "json"])
        // Inside the image: never the host's /run/berth.
        .args(["--restart-marker", "/tmp/restart-marker"])
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log_path).unwrap()));
    let mut speaker = Process::spawn("berth-speaker from its image on n1", command).unwrap();
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    bird.wait_established(1, SESSION_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}; the speaker's log: {}", log()));
    testbed::wait::until("BIRD has the VIP via n1", SESSION_TIMEOUT, || {
        Ok(bird
            .bgp_table()?
            .next_hops(vip4())
            .contains(&n4)
            .then_some(()))
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}; BIRD: {:?}; the speaker's log: {}",
            bird.bgp_table(),
            log()
        )
    });
    testbed::wait::until("the VIP in the router's FIB", SESSION_TIMEOUT, || {
        Ok(bird.fib()?.gateways(vip4()).contains(&n4).then_some(()))
    })
    .unwrap();

    let peers = || -> Option<serde_json::Value> {
        let out = netns
            .command("chroot")
            .arg(root)
            .args(["/berthctl", "peers", "-o", "json"])
            .output()
            .ok()?;
        serde_json::from_slice(&out.stdout).ok()
    };
    testbed::wait::until(
        "the image's berthctl shows the session",
        SESSION_TIMEOUT,
        || {
            Ok(peers()
                .filter(|v| v[0]["state"] == "Established")
                .map(|_| ()))
        },
    )
    .unwrap_or_else(|e| panic!("{e}: berthctl says {:?}", peers()));
    assert!(speaker.running(), "the speaker exited: {}", log());
}

/// A containerd of this test's own (private root, state and socket; no CRI plugin), killed on
/// drop; whatever its containers left mounted is unmounted with it.
struct Containerd {
    dir: ScratchDir,
    daemon: Option<Process>,
}

impl Containerd {
    fn start() -> Containerd {
        for program in ["containerd", "ctr", "runc"] {
            assert!(
                Command::new("sh")
                    .args(["-c", &format!("command -v {program}")])
                    .stdout(Stdio::null())
                    .status()
                    .unwrap()
                    .success(),
                "{program} is missing: scripts/build-images.sh installs it (package containerd)"
            );
        }
        let dir = ScratchDir::new("containerd");
        let d = dir.0.display();
        std::fs::write(
            dir.0.join("config.toml"),
            format!(
                "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{d}/containerd.sock\"\n\
                 [ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n\
                 [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{d}/opt\"\n"
            ),
        )
        .unwrap();
        let mut command = Command::new("containerd");
        command
            .arg("--config")
            .arg(dir.0.join("config.toml"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.0.join("containerd.log")).unwrap(),
            ));
        let daemon = Process::spawn("containerd", command).unwrap();
        let containerd = Containerd {
            dir,
            daemon: Some(daemon),
        };
        testbed::wait::until("containerd serves", SESSION_TIMEOUT, || {
            Ok(containerd
                .ctr()
                .arg("version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
                .then_some(()))
        })
        .unwrap_or_else(|e| panic!("{e}: {}", containerd.log()));
        containerd
    }

    /// `ctr` talking to this containerd, in Kubernetes' namespace `k8s.io`.
    fn ctr(&self) -> Command {
        let mut command = Command::new("ctr");
        command
            .arg("--address")
            .arg(self.dir.0.join("containerd.sock"))
            .args(["--namespace", "k8s.io"]);
        command
    }

    /// `ctr run` of `image` (a short name: `berth-speaker`) as container `id`, with its FIFOs
    /// and runc's state in our directory and a cgroup of its own that runc removes. Options
    /// and then `[COMMAND ARG…]` follow.
    fn run(&self, image: &str, id: &str, options: &[&str]) -> Command {
        let mut command = self.ctr();
        command
            .arg("run")
            .args(options)
            .arg("--fifo-dir")
            .arg(self.dir.0.join("fifo"))
            .arg("--runc-root")
            .arg(self.dir.0.join("runc"))
            .arg(format!("--cgroup=/{id}"))
            .arg(format!("docker.io/library/{image}:{VERSION}"))
            .arg(id);
        command
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("containerd.log")).unwrap_or_default()
    }
}

/// A container started with `ctr run -d`: killed and removed on drop (before its containerd).
struct Task<'a> {
    containerd: &'a Containerd,
    id: String,
}

impl Drop for Task<'_> {
    fn drop(&mut self) {
        let quiet = |args: &[&str]| {
            let _ = self
                .containerd
                .ctr()
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        quiet(&["tasks", "kill", "--signal", "SIGKILL", &self.id]);
        quiet(&["tasks", "delete", "--force", &self.id]);
        quiet(&["containers", "delete", &self.id]);
    }
}

fn container_id(what: &str) -> String {
    format!("berth-images-{what}-{}", std::process::id())
}

impl Drop for Containerd {
    fn drop(&mut self) {
        drop(self.daemon.take());
        // Mounts under our directory (a container's root left by a failed run), innermost first.
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let prefix = self.dir.0.to_string_lossy().into_owned();
        let mut ours: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|m| m.starts_with(&prefix))
            .collect();
        ours.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for mount in ours {
            let _ = Command::new("umount").args(["-l", mount]).status();
        }
        // containerd 1.6 puts shim sockets in /run/containerd/s whatever its state directory;
        // removed only when empty (no other containerd's shim is using it).
        let _ = std::fs::remove_dir("/run/containerd/s");
        let _ = std::fs::remove_dir("/run/containerd");
    }
}

/// containerd — the runtime most clusters run — takes both archives as `ctr images import`
/// (plain, and with the flags `kind load image-archive` uses) under the names the manifests
/// reference, and runs their binaries in containers (runc) from the imported images.
#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn containerd_imports_the_archives_and_runs_them() {
    let containerd = Containerd::start();
    for (image, flags) in [
        ("berth-controller", &[][..]),
        ("berth-speaker", &["--all-platforms", "--digests"][..]),
    ] {
        let archive = archive(image);
        run(containerd
            .ctr()
            .args(["images", "import"])
            .args(flags)
            .arg(&archive));
    }
    let names = stdout(containerd.ctr().args(["images", "ls", "-q"]));
    for (_, image) in IMAGES {
        assert!(
            names
                .lines()
                .any(|n| n == format!("docker.io/library/{image}:{VERSION}")),
            "{image} imported under its name: {names}"
        );
    }

    let in_container = |image: &str, what: &str, args: &[&str]| -> String {
        stdout(
            containerd
                .run(image, &container_id(what), &["--rm"])
                .args(args),
        )
    };
    let version = in_container(
        "berth-controller",
        "ctl",
        &["/berth-controller", "--version"],
    );
    assert!(
        version.contains(VERSION),
        "berth-controller --version: {version:?}"
    );
    let version = in_container("berth-speaker", "spk", &["/berth-speaker", "--version"]);
    assert!(
        version.contains(VERSION),
        "berth-speaker --version: {version:?}"
    );
    let help = in_container("berth-speaker", "cli", &["/berthctl", "--help"]);
    assert!(help.contains("Usage:"), "berthctl --help: {help}");
}

/// The speaker image run as a node runs it: containerd and runc, the image's user, in the lab
/// node's network namespace (as `hostNetwork` does), its manifests bind-mounted read-only.
/// It brings up the session with BIRD and announces the VIP with the node as next hop.
#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn speaker_container_announces_a_vip_to_bird() {
    let containerd = Containerd::start();
    run(containerd
        .ctr()
        .args(["images", "import"])
        .arg(archive("berth-speaker")));
    let state = ScratchDir::new("speaker-state");
    std::fs::write(state.0.join("cluster.yaml"), speaker_manifests()).unwrap();

    let lab = star("img-ctr", 1);
    let (_, n4, _, _) = link_addresses(1);
    let config = RouterConfig::new("r", "10.255.0.1".parse().unwrap(), ROUTER_AS)
        .neighbor(Neighbor::new(n4, NODE_AS));
    let bird = Bird::start(lab.netns("r").unwrap(), &config).unwrap();
    let netns = lab.netns("n1").unwrap();

    let id = container_id("bgp");
    let log_path = lab.dir().join("n1-speaker-container.log");
    let with_ns = format!("network:{}", netns.path().display());
    let mount = format!(
        "type=bind,src={},dst=/state,options=rbind:ro",
        state.0.display()
    );
    let log_uri = format!("file://{}", log_path.display());
    run(containerd
        .run(
            "berth-speaker",
            &id,
            &[
                "--detach",
                "--with-ns",
                &with_ns,
                "--mount",
                &mount,
                "--log-uri",
                &log_uri,
            ],
        )
        .args([
            "/berth-speaker",
            "--node-name",
            "n1",
            "--state-dir",
            "/state",
        ])
        .args(["--drain-seconds", "0", "--log-format", "json"]));
    let _task = Task {
        containerd: &containerd,
        id: id.clone(),
    };
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    bird.wait_established(1, SESSION_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}; the speaker's log: {}", log()));
    testbed::wait::until("BIRD has the VIP via n1", SESSION_TIMEOUT, || {
        Ok(bird
            .bgp_table()?
            .next_hops(vip4())
            .contains(&n4)
            .then_some(()))
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}; BIRD: {:?}; the speaker's log: {}",
            bird.bgp_table(),
            log()
        )
    });
    let tasks = stdout(containerd.ctr().args(["tasks", "ls"]));
    assert!(
        tasks
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("RUNNING")),
        "the speaker's container is running: {tasks}"
    );
}
