#!/usr/bin/env python3
"""Offline checks of everything under deploy/ (run by scripts/check-deploy.sh, which installs
the tools into a virtualenv first).

1. Every YAML file parses (Helm templates excepted: they are checked once rendered).
2. The chart's copy of the CRDs equals the generated deploy/crds/.
3. `kubectl kustomize deploy/` renders, and the chart renders (Helm's own Go engine through
   helm-python-sdk) with its default values and with values-example.yaml; `helm lint` passes.
4. Every rendered object and every example validates strictly (unknown fields are errors, as
   with `kubectl apply --validate=strict`): built-in kinds against the Kubernetes OpenAPI
   schemas of the oldest release the chart supports and of the newest one known to the
   validator; Berth's kinds against the openAPIV3Schema of our own CRDs. CEL rules
   (x-kubernetes-validations) are NOT evaluated here; the api crate's tests cover them.
5. The install itself keeps its promises: least-privilege RBAC (no wildcards, Secrets only
   through a namespaced Role), two controller replicas with leader election, the speaker on
   the host network with NODE_NAME from the downward API, tolerating every taint, one node at
   a time, probes on /healthz and /readyz, scrape annotations, exactly the capabilities its
   flags need (NET_BIND_SERVICE for a BGP port below 1024, NET_ADMIN for --vip-interface), a
   grace period longer than the speaker's drain, the restart marker on a writable hostPath
   mount (so it outlives the pod), and every command-line flag known to the binary's clap
   definition.
6. The Dockerfile parses with BuildKit's own parser and passes hadolint; its final stages are
   distroless/static running the right binaries, the controller as non-root. It is not built
   here with an engine: scripts/build-images.sh assembles the same images from it with buildah
   (no registry, no engine) and testbed/tests/images.rs runs them.

Exit status 1 with one line per problem on any failure.
"""

from __future__ import annotations

import copy
import pathlib
import re
import subprocess
import sys
from typing import Any, Callable, Iterable

import dockerfile
import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "chart"
NAMESPACE = "berth-system"
# The oldest release the chart accepts (Chart.yaml kubeVersion) and the newest the validator knows.
K8S_VERSIONS = ["1.27.0", kubernetes_validate.latest_version()]
# berth-speaker's --drain-seconds default; the DaemonSet's grace period must exceed the drain
# by this margin (closing sessions, exiting).
SPEAKER_DEFAULT_DRAIN_SECONDS = 5
# berth-speaker's --restart-marker default.
SPEAKER_DEFAULT_RESTART_MARKER = "/run/berth/restart"
GRACE_MARGIN_SECONDS = 10
BERTH_GROUP = "network.kubesphere.io"

problems: list[str] = []


def fail(where: str, message: str) -> None:
    problems.append(f"{where}: {message}")


def load_all(text: str, where: str) -> list[dict[str, Any]]:
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        fail(where, f"YAML does not parse: {e}")
        return []


# --- 1, 2: files -------------------------------------------------------------------------


def check_yaml_files() -> int:
    count = 0
    for path in sorted(DEPLOY.rglob("*")):
        if path.suffix not in (".yaml", ".yml") or (CHART / "templates") in path.parents:
            continue
        load_all(path.read_text(), str(path.relative_to(ROOT)))
        count += 1
    return count


def load_crds() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> strict JSON schema, from deploy/crds/."""
    schemas = {}
    for path in sorted((DEPLOY / "crds").glob("*.yaml")):
        for crd in load_all(path.read_text(), str(path.relative_to(ROOT))):
            spec = crd["spec"]
            for version in spec["versions"]:
                api_version = f"{spec['group']}/{version['name']}"
                schema = strict_schema(version["schema"]["openAPIV3Schema"])
                schema.setdefault("properties", {}).update(
                    {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {"name": {"type": "string", "minLength": 1}},
                        },
                    }
                )
                schema["properties"]["metadata"]["additionalProperties"] = True
                schemas[(api_version, spec["names"]["kind"])] = schema
        chart_copy = CHART / "crds" / path.name
        if not chart_copy.exists() or chart_copy.read_bytes() != path.read_bytes():
            fail(
                str(chart_copy.relative_to(ROOT)),
                f"differs from deploy/crds/{path.name}: cp deploy/crds/*.yaml deploy/chart/crds/",
            )
    extra = {p.name for p in (CHART / "crds").glob("*")} - {
        p.name for p in (DEPLOY / "crds").glob("*")
    }
    for name in sorted(extra):
        fail(f"deploy/chart/crds/{name}", "not a generated CRD (not in deploy/crds/)")
    return schemas


def strict_schema(schema: Any) -> Any:
    """An OpenAPI v3 structural schema as the API server applies it with strict field
    validation: unknown fields are errors unless x-kubernetes-preserve-unknown-fields, and
    `nullable` admits null."""
    if isinstance(schema, list):
        return [strict_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict_schema(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if out.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


# --- 3: renderers ------------------------------------------------------------------------


def render_kustomize(kubectl: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        fail("kubectl kustomize deploy/", result.stderr.strip())
        return []
    return load_all(result.stdout, "kustomize output")


def render_chart(values: dict[str, Any] | None, label: str) -> list[dict[str, Any]] | None:
    """The chart's objects (None when rendering failed), CRDs first as Helm installs them."""
    with helm.Chart.load(str(CHART)) as chart:
        try:
            files = chart.render(values, name="berth", namespace=NAMESPACE, is_install=True)
        except helm.HelmError as e:  # type: ignore[attr-defined]
            fail(label, f"does not render: {e}")
            return None
        objects = [o for crd in chart.crds for o in load_all(crd["data"], crd["filename"])]
    for name, text in sorted(files.items()):
        if name.endswith("NOTES.txt"):
            continue
        objects += load_all(text, f"{label}: {name}")
    return objects


def lint_chart() -> None:
    report = helm.lint(str(CHART))
    for error in report.get("errors") or []:
        fail("helm lint deploy/chart", str(error))
    for message in report.get("messages") or []:
        # 1 = INFO ("icon is recommended"); 2 = WARNING and 4 = ERROR are failures.
        if message.get("severity", 0) >= 2:
            fail(f"helm lint deploy/chart/{message.get('path')}", message.get("error", ""))


# --- 4: schemas --------------------------------------------------------------------------


def validate(objects: Iterable[dict[str, Any]], crds: dict, label: str) -> int:
    count = 0
    for obj in objects:
        where = f"{label}: {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        key = (obj.get("apiVersion", ""), obj.get("kind", ""))
        if key[0].split("/")[0] == BERTH_GROUP:
            schema = crds.get(key)
            if schema is None:
                fail(where, f"no CRD defines {key}")
                continue
            for error in jsonschema.Draft7Validator(schema).iter_errors(obj):
                path = ".".join(str(p) for p in error.absolute_path)
                fail(where, f"CRD schema: {path}: {error.message}")
        else:
            for version in K8S_VERSIONS:
                try:
                    kubernetes_validate.validate(obj, version, strict=True)
                except kubernetes_validate.ValidationError as e:
                    path = ".".join(str(p) for p in e.absolute_path)
                    fail(where, f"Kubernetes {version} schema: {path}: {e.message}")
                except kubernetes_validate.SchemaNotFoundError as e:
                    fail(where, f"Kubernetes {version}: {e}")
        count += 1
    return count


# --- 5: the install's promises -----------------------------------------------------------


def clap_flags(binary_source: pathlib.Path) -> set[str] | None:
    """`--flag` names a clap derive struct declares (None when it declares none yet)."""
    if not binary_source.exists():
        return None
    text = binary_source.read_text()
    flags = set()
    for attrs, field in re.findall(
        r"((?:#\[arg\([^\]]*\)\]\s*)+)(?:pub\s+)?(\w+)\s*:", text, flags=re.S
    ):
        if not re.search(r"\blong\b", attrs):
            continue
        explicit = re.search(r'\blong\s*=\s*"([^"]+)"', attrs)
        flags.add(explicit.group(1) if explicit else field.replace("_", "-"))
    return flags or None


def find(objects: list[dict], kind: str, name: str) -> dict | None:
    return next(
        (o for o in objects if o.get("kind") == kind and o["metadata"].get("name") == name), None
    )


def arg_value(args: list[str], flag: str) -> str | None:
    return next((a.split("=", 1)[1] for a in args if a.startswith(f"--{flag}=")), None)


def check_install(objects: list[dict], label: str) -> None:
    where = lambda what: f"{label}: {what}"  # noqa: E731

    kinds_names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    cluster_scoped = {
        "Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding",
        "Eip", "BgpConf", "BgpPeer",
    }  # fmt: skip
    for o in objects:
        if o["kind"] not in cluster_scoped and o["metadata"].get("namespace") != NAMESPACE:
            fail(where(f"{o['kind']}/{o['metadata']['name']}"), f"not in namespace {NAMESPACE}")

    check_rbac(objects, where, kinds_names)

    controller = find(objects, "Deployment", "berth-controller")
    if controller is None:
        fail(label, "no Deployment berth-controller")
    else:
        pod = controller["spec"]["template"]
        c = pod["spec"]["containers"][0]
        w = where("Deployment/berth-controller")
        if controller["spec"].get("replicas") != 2:
            fail(w, "replicas must be 2")
        if not any(a.startswith("--lease-name") for a in c.get("args", [])) or any(
            a == "--no-leader-election" for a in c.get("args", [])
        ):
            fail(w, "leader election must be on (--lease-name, no --no-leader-election)")
        if not pod["spec"].get("securityContext", {}).get("runAsNonRoot"):
            fail(w, "must run as non-root")
        check_container(pod, c, w, ROOT / "controller/src/bin/berth-controller.rs")
        check_env_field(c, "POD_NAME", "metadata.name", w)
        check_env_field(c, "POD_NAMESPACE", "metadata.namespace", w)

    speaker = find(objects, "DaemonSet", "berth-speaker")
    if speaker is None:
        fail(label, "no DaemonSet berth-speaker")
        return
    w = where("DaemonSet/berth-speaker")
    spec = speaker["spec"]
    pod = spec["template"]
    ps = pod["spec"]
    c = ps["containers"][0]
    if not ps.get("hostNetwork"):
        fail(w, "must run on the host network (next hop self)")
    if ps.get("dnsPolicy") != "ClusterFirstWithHostNet":
        fail(w, "dnsPolicy must be ClusterFirstWithHostNet on the host network")
    check_env_field(c, "NODE_NAME", "spec.nodeName", w)
    if "--node-name=$(NODE_NAME)" not in c.get("args", []):
        fail(w, "must pass --node-name=$(NODE_NAME)")
    if not any(t.get("operator") == "Exists" and "key" not in t for t in ps.get("tolerations", [])):
        fail(w, "must tolerate every taint (operator: Exists, no key)")
    rolling = spec.get("updateStrategy", {}).get("rollingUpdate", {})
    if rolling.get("maxUnavailable") != 1:
        fail(w, "updateStrategy.rollingUpdate.maxUnavailable must be 1")
    args = c.get("args", [])
    grace = ps.get("terminationGracePeriodSeconds", 30)
    drain = int(arg_value(args, "drain-seconds") or SPEAKER_DEFAULT_DRAIN_SECONDS)
    if grace <= drain + GRACE_MARGIN_SECONDS:
        fail(w, f"terminationGracePeriodSeconds {grace} must exceed the {drain}s drain "
                f"by more than {GRACE_MARGIN_SECONDS}s")  # fmt: skip
    # The BGP port: --listen-port, else the BgpConf `default` installed with it, else 179.
    conf = find(objects, "BgpConf", "default")
    port = int(
        arg_value(args, "listen-port") or (conf or {}).get("spec", {}).get("listenPort") or 179
    )
    wanted = set()
    if port < 1024:
        wanted.add("NET_BIND_SERVICE")
    if arg_value(args, "vip-interface"):
        wanted.add("NET_ADMIN")  # creates a dummy link and puts addresses on it
    if arg_value(args, "layer2-port") != "0":
        wanted.add("NET_RAW")  # layer 2 answers ARP and NDP on an AF_PACKET socket
    added = set(c.get("securityContext", {}).get("capabilities", {}).get("add", []))
    if added != wanted:
        fail(w, f"capabilities added {sorted(added)}, expected exactly {sorted(wanted)} "
                f"(BGP port {port})")  # fmt: skip
    check_restart_marker(ps, c, w)
    check_container(pod, c, w, ROOT / "speaker/src/bin/berth-speaker.rs")


def check_restart_marker(ps: dict, c: dict, w: str) -> None:
    """The restart marker must be writable (the root file system is read-only) and outlive
    the pod (a hostPath, not an emptyDir), or the next pod never knows it restarted."""
    marker = arg_value(c.get("args", []), "restart-marker")
    if marker is None:
        marker = SPEAKER_DEFAULT_RESTART_MARKER
    if not marker:
        return  # turned off
    mount = next(
        (
            m for m in c.get("volumeMounts", [])
            if marker.startswith(m["mountPath"].rstrip("/") + "/")
        ),
        None,
    )  # fmt: skip
    if mount is None:
        fail(w, f"restart marker {marker} is on no volume (the root file system is read-only)")
        return
    if mount.get("readOnly"):
        fail(w, f"restart marker {marker} is on a read-only mount")
    volume = next((v for v in ps.get("volumes", []) if v["name"] == mount["name"]), {})
    if "hostPath" not in volume:
        fail(w, f"restart marker {marker}: volume {mount['name']} is not a hostPath "
                "(the marker would not outlive the pod)")  # fmt: skip


def check_container(pod: dict, c: dict, w: str, binary_source: pathlib.Path) -> None:
    sc = c.get("securityContext", {})
    if sc.get("allowPrivilegeEscalation") is not False:
        fail(w, "allowPrivilegeEscalation must be false")
    if sc.get("privileged"):
        fail(w, "must not be privileged")
    if not sc.get("readOnlyRootFilesystem"):
        fail(w, "readOnlyRootFilesystem must be true")
    if sc.get("capabilities", {}).get("drop") != ["ALL"]:
        fail(w, "capabilities must drop ALL")
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = c.get(probe, {}).get("httpGet", {})
        if get.get("path") != path or get.get("port") not in ("metrics", ports.get("metrics")):
            fail(w, f"{probe} must GET {path} on the metrics port")
    annotations = pod["metadata"].get("annotations") or {}
    if annotations.get("prometheus.io/scrape") != "true":
        fail(w, "prometheus.io/scrape annotation missing")
    elif annotations.get("prometheus.io/port") != str(ports.get("metrics")):
        fail(w, "prometheus.io/port must be the metrics containerPort")
    metrics_addr = next((a for a in c.get("args", []) if a.startswith("--metrics-addr=")), "")
    if not metrics_addr.endswith(f":{ports.get('metrics')}"):
        fail(w, "--metrics-addr must listen on the metrics containerPort")
    known = clap_flags(binary_source)
    used = {a[2:].split("=")[0] for a in c.get("args", []) if a.startswith("--")}
    if known is None:
        print(f"  warning: {w}: {binary_source.relative_to(ROOT)} declares no flags yet; "
              f"flags {sorted(used)} unchecked")  # fmt: skip
    else:
        for flag in sorted(used - known):
            fail(w, f"--{flag} is not a flag of {binary_source.relative_to(ROOT)}")


def check_env_field(c: dict, name: str, field: str, w: str) -> None:
    env = next((e for e in c.get("env", []) if e["name"] == name), None)
    got = (env or {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    if got != field:
        fail(w, f"env {name} must come from the downward API field {field}")


def check_rbac(objects: list[dict], where: Callable[[str], str], kinds_names: set) -> None:
    for o in objects:
        if o["kind"] not in ("ClusterRole", "Role"):
            continue
        w = where(f"{o['kind']}/{o['metadata']['name']}")
        for rule in o.get("rules", []):
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                if "*" in rule.get(field, []):
                    fail(w, f"wildcard in {field}")
            if "secrets" in rule.get("resources", []):
                if o["kind"] == "ClusterRole":
                    fail(w, "Secrets must be granted by a namespaced Role, never cluster-wide")
                if set(rule["verbs"]) - {"get", "list", "watch"}:
                    fail(w, "Secrets are read-only for Berth")
            for verb in ("escalate", "bind", "impersonate", "delete", "deletecollection"):
                if verb in rule.get("verbs", []):
                    fail(w, f"verb {verb} is never needed")
    for o in objects:
        if o["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        w = where(f"{o['kind']}/{o['metadata']['name']}")
        ref = o["roleRef"]
        if (ref["kind"], ref["name"]) not in kinds_names:
            fail(w, f"roleRef {ref['kind']}/{ref['name']} is not installed")
        for s in o.get("subjects", []):
            if s["kind"] == "ServiceAccount" and ("ServiceAccount", s["name"]) not in kinds_names:
                fail(w, f"subject ServiceAccount/{s['name']} is not installed")
    for kind in ("Deployment", "DaemonSet"):
        for o in (x for x in objects if x["kind"] == kind):
            sa = o["spec"]["template"]["spec"].get("serviceAccountName")
            if ("ServiceAccount", sa) not in kinds_names:
                fail(where(f"{kind}/{o['metadata']['name']}"), f"ServiceAccount {sa} missing")


# --- 6: the Dockerfile -------------------------------------------------------------------


def check_dockerfile(hadolint: str) -> None:
    """Dockerfile parses (BuildKit's parser), passes hadolint, and its two final stages are
    distroless images running the binaries Cargo defines, the controller as non-root."""
    path = ROOT / "Dockerfile"
    result = subprocess.run([hadolint, "--no-color", str(path)], capture_output=True, text=True)
    if result.returncode != 0:
        fail("hadolint Dockerfile", (result.stdout + result.stderr).strip())
    try:
        commands = dockerfile.parse_file(str(path))
    except dockerfile.GoParseError as e:
        fail("Dockerfile", f"does not parse: {e}")
        return
    stages: dict[str, list] = {}
    current: list = []
    for c in commands:
        if c.cmd.upper() == "FROM":
            current = [c]
            if len(c.value) == 3 and c.value[1].upper() == "AS":
                stages[c.value[2]] = current
        else:
            current.append(c)
    binaries = {
        "berth-controller": ROOT / "controller/src/bin/berth-controller.rs",
        "berth-speaker": ROOT / "speaker/src/bin/berth-speaker.rs",
        "berthctl": ROOT / "speaker/src/bin/berthctl.rs",
    }
    for name, source in binaries.items():
        if not source.exists():
            fail("Dockerfile", f"builds {name} but {source.relative_to(ROOT)} does not exist")
    final_stages = (("controller", "/berth-controller", True), ("speaker", "/berth-speaker", False))
    for stage, entry, non_root in final_stages:
        cmds = stages.get(stage)
        w = f"Dockerfile stage {stage}"
        if not cmds:
            fail("Dockerfile", f"no stage named {stage}")
            continue
        if not cmds[0].value[0].startswith("gcr.io/distroless/static"):
            fail(w, "must be FROM distroless/static (static binary, nothing else)")
        users = [c.value[0] for c in cmds if c.cmd.upper() == "USER"]
        if non_root and (not users or users[-1].split(":")[0] in ("0", "root")):
            fail(w, "must run as a non-root USER")
        entrypoints = [c.value for c in cmds if c.cmd.upper() == "ENTRYPOINT"]
        if not entrypoints or entrypoints[-1][0] != entry:
            fail(w, f"ENTRYPOINT must be {entry}")


# --- main --------------------------------------------------------------------------------


def main() -> int:
    kubectl = sys.argv[1] if len(sys.argv) > 1 else "kubectl"
    hadolint = sys.argv[2] if len(sys.argv) > 2 else "hadolint"
    print(f"  {check_yaml_files()} YAML files parse")
    crds = load_crds()
    print(f"  {len(crds)} CRD schemas loaded; chart CRDs compared with deploy/crds/")

    objects = render_kustomize(kubectl)
    print(f"  kustomize rendered {len(objects)} objects")
    validate(objects, crds, "kustomize")
    if objects:
        check_install(objects, "kustomize")

    examples = 0
    for path in sorted((DEPLOY / "examples").glob("*.yaml")):
        label = str(path.relative_to(ROOT))
        examples += validate(load_all(path.read_text(), label), crds, label)
    print(f"  {examples} example objects validated")

    lint_chart()
    default = render_chart(None, "chart (default values)")
    if default is not None:
        print(f"  chart rendered {len(default)} objects with default values")
        validate(default, crds, "chart (default values)")
        check_install(default, "chart (default values)")
        missing = {(o["kind"], o["metadata"]["name"]) for o in objects} - {
            (o["kind"], o["metadata"]["name"]) for o in default
        }
        for kind, name in sorted(missing - {("Namespace", NAMESPACE)}):
            fail("chart (default values)", f"installs no {kind}/{name} (kustomize does)")
    example_values = yaml.safe_load((CHART / "values-example.yaml").read_text())
    rendered = render_chart(example_values, "chart (values-example.yaml)")
    if rendered is not None:
        print(f"  chart rendered {len(rendered)} objects with values-example.yaml")
        validate(rendered, crds, "chart (values-example.yaml)")
        check_install(rendered, "chart (values-example.yaml)")
        if not any(o["kind"] == "Eip" for o in rendered) or not find(rendered, "BgpConf", "default"):
            fail("chart (values-example.yaml)", "pools and BgpConf from values not rendered")
    # Two replicas without leader election would hand out addresses twice: the chart refuses.
    before = len(problems)
    refused = render_chart({"controller": {"leaderElection": False}}, "guard")
    cut_short = render_chart({"speaker": {"drainSeconds": 55}}, "guard")
    del problems[before:]
    if refused is not None:
        fail("chart", "renders 2 controller replicas without leader election (must fail)")
    if cut_short is not None:
        fail("chart", "renders a grace period that cuts the speaker's drain short (must fail)")

    check_dockerfile(hadolint)
    print("  Dockerfile parsed and linted (built by scripts/build-images.sh, run by testbed/tests/images.rs)")

    if problems:
        print(f"\n{len(problems)} problem(s) in deploy/:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    print("  deploy/ is consistent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
