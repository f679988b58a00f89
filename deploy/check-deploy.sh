#!/usr/bin/env bash
# Offline validator for the deployment artefacts: deploy/Dockerfile, deploy/compose/,
# deploy/k8s/, deploy/grafana/kefu-dashboard.json (and the variable names in
# docs/deploy.md). Run from anywhere (`make test` runs it); needs python3 with venv.
#
# 1. A venv at $CARGO_TARGET_DIR/deploy-venv (else target/deploy-venv), made once with
#    pinned packages from pip's configured index (--no-deps: the whole set is pinned).
# 2. compose.yaml against the Compose spec schema shipped in check-jsonschema, plus what
#    the schema cannot see (files it names, depends_on, health checks, nginx routes).
# 3. Every k8s manifest with kubernetes-validate, strict (unknown fields are errors),
#    against Kubernetes 1.30 and 1.37; kustomization.yaml lists every manifest; names a
#    pod refers to (ConfigMaps, Secrets and their keys, volumes, ports) exist.
# 4. The Grafana dashboard: JSON, schemaVersion 39, ${DS_PROMETHEUS}, and every metric
#    name in a query exists in the Rust sources with the suffix its type is exposed with
#    (counter: _total; histogram: _bucket/_sum/_count; gauge: none), labels too.
# 5. Every KEFU_* variable named in those files, and every key of the kefu.toml files
#    (compose, k8s ConfigMap), is a real configuration key: the field names of
#    KefuConfig and the structs it holds, read from the sources (the planned [cluster]
#    keys while ClusterConfig is not in the code yet).
# 6. The Dockerfile: stages, non-root user, ports, COPY sources, and its runtime packages
#    against the NEEDED libraries of a built kefu binary (when one is there).
# Then it breaks copies of the files on purpose (a misspelled key, an unknown field, a
# metric that does not exist, …) and checks that each one is caught.
# One line per check; exits non-zero when any check fails.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="$target/deploy-venv"

# The venv's packages, every one pinned (check-jsonschema, kubernetes-validate and their
# dependencies), installed with --no-deps; `pip check` proves the set is complete.
PACKAGES=(
  check-jsonschema==0.39.0
  kubernetes-validate==1.37.0
  PyYAML==6.0.4
  attrs==26.1.0
  certifi==2026.10.19.post1
  charset-normalizer==3.5.3
  click==8.5.1
  idna==3.20
  importlib_resources==7.1.0
  jsonschema==4.26.0
  jsonschema-specifications==2025.9.1
  packaging==26.4
  referencing==0.37.0
  regress==2026.9.1
  requests==2.34.2
  rpds-py==2026.9.1
  ruamel.yaml==0.19.1
  typing_extensions==4.16.0
  urllib3==2.8.0
)
want="$(printf '%s\n' "${PACKAGES[@]}")"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.kefu-packages" 2>/dev/null)" != "$want" ]; then
  command -v python3 >/dev/null 2>&1 || { echo "check-deploy: python3 not found" >&2; exit 1; }
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    { echo "check-deploy: needs Python 3.11 or later (tomllib)" >&2; exit 1; }
  echo "check-deploy: creating $venv"
  rm -rf "$venv"
  mkdir -p "$target"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    echo "check-deploy: 'python3 -m venv' failed; install the venv module (Debian: python3-venv)" >&2
    exit 1
  fi
  pip=("$venv/bin/python" -m pip --disable-pip-version-check --no-input -q)
  "${pip[@]}" install --no-deps --only-binary :all: "${PACKAGES[@]}"
  "${pip[@]}" check
  printf '%s' "$want" >"$venv/.kefu-packages"
fi

exec "$venv/bin/python" - "$root" "$venv" <<'PY'
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import yaml
import kubernetes_validate.utils as kv

ROOT = Path(sys.argv[1])
VENV = Path(sys.argv[2])
K8S_VERSIONS = ("1.30", "1.37")
# [cluster] as planned for multi-node operation (issue 16); used while the code has no
# ClusterConfig yet. Once it has one, the code's field names are used instead.
PLANNED_CLUSTER_KEYS = ("backend", "redis_url", "node_id", "key_prefix", "heartbeat_ms",
                        "node_timeout_ms", "internal_bind", "internal_url", "secret")
# Crates whose sources hold configuration structs and metrics: crate name -> folder.
CRATES = {
    "kefu": "src", "kefu_signaling": "signaling/src", "kefu_media_server": "media-server/src",
    "kefu_recorder": "recorder/src", "kefu_proto": "proto/src", "kefu_beauty": "beauty/src",
    "kefu_vision": "vision/src",
}
COMPOSE_SERVICES = ("kefu-signaling-1", "kefu-signaling-2", "kefu-media-1", "kefu-media-2",
                    "redis", "postgres", "minio", "minio-init", "coturn", "lb")
# Libraries every Debian image has (the runtime stage need not install them).
BASE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6"}
NOT_CLI_ENV = {"KEFU_CONFIG"}  # read by the CLI (--config), not a configuration key


# ----------------------------------------------------------------------------- Rust ---
def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def matching(text, i, open_, close):
    """Index just past the bracket that closes text[i] (an `open_`)."""
    depth = 0
    for j in range(i, len(text)):
        if text[j] == open_:
            depth += 1
        elif text[j] == close:
            depth -= 1
            if depth == 0:
                return j + 1
    raise ValueError("unbalanced")


def split_top(body):
    """Split a struct body on commas outside <>, (), []."""
    parts, depth, cur = [], 0, []
    for ch in body:
        if ch in "<([":
            depth += 1
        elif ch in ">)]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in (s.strip() for s in parts) if p]


def declared_type(text, ident):
    """The type (or initialiser) `ident` is declared with: `ident: T,` or `let ident = …;`."""
    m = re.search(r"\b%s\s*:\s*(?!:)|\blet\s+(?:mut\s+)?%s\s*=\s*" % (ident, ident), text)
    if not m:
        return ""
    depth, out = 0, []
    for ch in text[m.end():]:
        if ch in "<([":
            depth += 1
        elif ch in ">)]":
            depth -= 1
        elif depth == 0 and ch in ",;={\n":
            break
        out.append(ch)
    return "".join(out)


class Struct:
    def __init__(self, name, crate, path, fields):
        self.name, self.crate, self.path, self.fields = name, crate, path, fields


class Rust:
    """Struct fields (with serde attributes) and metric registrations of the workspace."""

    STRUCT_RE = re.compile(r"(?m)^[ \t]*(?:pub(?:\([^)]*\))?\s+)?struct\s+(\w+)\b[^;{(]*\{")

    def __init__(self, root):
        self.structs = {}
        self.sources = {}
        for crate, folder in CRATES.items():
            for path in sorted((root / folder).rglob("*.rs")):
                text = strip_comments(path.read_text(encoding="utf-8"))
                self.sources[path] = (crate, text)
                for m in self.STRUCT_RE.finditer(text):
                    start = m.end() - 1
                    body = text[start + 1:matching(text, start, "{", "}") - 1]
                    fields = {}
                    for part in split_top(body):
                        attrs = []
                        while part.startswith("#["):
                            end = matching(part, 1, "[", "]")
                            attrs.append(part[2:end - 1])
                            part = part[end:].strip()
                        fm = re.fullmatch(r"(?:pub(?:\([^)]*\))?\s+)?(?:r#)?(\w+)\s*:\s*(.+)", part, re.S)
                        if fm:
                            fields[fm.group(1)] = (" ".join(fm.group(2).split()), attrs)
                    self.structs.setdefault(m.group(1), []).append(Struct(m.group(1), crate, path, fields))

    def resolve(self, ty, crate, path):
        """The struct(s) a field type names, or [] for a value (number, string, Vec, enum…)."""
        ty = ty.strip()
        while True:
            m = re.fullmatch(r"(?:(?:std|core|alloc)::\w+::)?(?:Option|Box|Arc)\s*<(.*)>", ty)
            if not m:
                break
            ty = m.group(1).strip()
        if "<" in ty or ty[:1] in "([&":
            return []
        segs = ty.split("::")
        name = segs[-1]
        candidates = self.structs.get(name, [])
        if not candidates:
            return []
        want = crate
        if len(segs) > 1:
            want = segs[0] if segs[0] in CRATES else crate
        else:
            text = self.sources[path][1]
            um = re.search(r"\buse\s+((?:\w+::)+)(?:\{[^}]*\b%s\b|%s\b)" % (name, name), text)
            if um:
                first = um.group(1).split("::")[0]
                want = first if first in CRATES else crate
        return [s for s in candidates if s.crate == want] or candidates

    def config_tree(self, structs, depth=0):
        """{key: subtree or None (a value)} for the union of `structs`' serde fields."""
        tree = {}
        for s in structs:
            for field, (ty, attrs) in s.fields.items():
                serde = " ".join(a[a.index("(") + 1:] for a in attrs if a.startswith("serde("))
                if re.search(r"\bskip(_deserializing)?\b(?!_)", serde):
                    continue
                sub = self.resolve(ty, s.crate, s.path) if depth < 8 else []
                subtree = self.config_tree(sub, depth + 1) if sub else None
                if re.search(r"\bflatten\b", serde) and subtree:
                    tree.update(subtree)
                    continue
                rename = re.search(r'\brename\s*=\s*"([^"]+)"', serde)
                keys = [rename.group(1) if rename else field]
                keys += re.findall(r'\balias\s*=\s*"([^"]+)"', serde)
                for key in keys:
                    tree[key] = subtree
        return tree

    def kefu_config(self):
        """The configuration keys, and a note on where [cluster] came from."""
        root = [s for s in self.structs.get("KefuConfig", []) if s.crate == "kefu_signaling"]
        if not root:
            raise SystemExit("check-deploy: struct KefuConfig not found in signaling/src")
        tree = self.config_tree(root)
        if isinstance(tree.get("cluster"), dict):
            return tree, "[cluster] from the code"
        tree["cluster"] = {k: None for k in PLANNED_CLUSTER_KEYS}
        return tree, "[cluster] from the planned key list (no ClusterConfig in the code yet)"

    def metrics(self):
        """Exposed metric names -> (registered name, kind), and the label names in use."""
        exposed, problems = {}, []
        tuple_structs = {}
        for path, (_, text) in self.sources.items():
            for m in re.finditer(r"struct\s+(\w+)\s*\(([^;]*)\)\s*;", text):
                tuple_structs[m.group(1)] = m.group(2)
        for path, (_, text) in self.sources.items():
            if re.search(r"\b(with_prefix|sub_registry_with_prefix|register_with_unit)\s*\(", text):
                problems.append(f"{path.relative_to(ROOT)}: a prefixed registry or unit suffix; "
                                "teach deploy/check-deploy.sh how it names metrics")
            for m in re.finditer(r'\.register\(\s*"([A-Za-z_:][A-Za-z0-9_:]*)"\s*,\s*"(?:[^"\\]|\\.)*"\s*,\s*([^;]*?)\)\s*;', text, re.S):
                name, expr = m.group(1), m.group(2)
                im = re.match(r"\s*(?:self\s*\.\s*)?(\w+)", expr)
                ident = im.group(1) if im else ""
                ty = declared_type(text, ident)
                base = re.sub(r"[<>(),:]", " ", ty).split()
                for word in list(base):
                    if word in tuple_structs:
                        base.append(tuple_structs[word])
                ty = " ".join(base)
                kind = ("histogram" if "Histogram" in ty else "counter" if "Counter" in ty
                        else "gauge" if "Gauge" in ty else "info" if "Info" in ty else None)
                if kind is None:
                    problems.append(f"{path.relative_to(ROOT)}: cannot tell the type of metric {name} ({expr.strip()})")
                    continue
                suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"],
                            "gauge": [""], "info": ["_info"]}[kind]
                for suffix in suffixes:
                    exposed[name + suffix] = (name, kind)
        labels = {"instance", "job", "le", "role", "__name__"}
        for path, (_, text) in self.sources.items():
            for m in re.finditer(r"#\[derive\([^)]*\bEncodeLabelSet\b[^)]*\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?struct\s+(\w+)", text):
                for s in self.structs.get(m.group(1), []):
                    labels.update(s.fields)
        return exposed, labels, problems


# ------------------------------------------------------------------------ the files ---
class Tree:
    """Where the artefacts are: the repository, or a broken copy made by a self-test."""

    def __init__(self, base):
        self.base = Path(base)
        self.compose_dir = self.base / "deploy/compose"
        self.k8s_dir = self.base / "deploy/k8s"
        self.dashboard = self.base / "deploy/grafana/kefu-dashboard.json"
        self.dockerfile = self.base / "deploy/Dockerfile"
        self.docs = self.base / "docs/deploy.md"

    def k8s_files(self):
        return sorted(p for p in self.k8s_dir.glob("*.yaml") if p.name != "kustomization.yaml")

    def k8s_docs(self):
        out = []
        for path in self.k8s_files():
            for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
                if doc:
                    out.append((path, doc))
        return out

    def env_sources(self):
        files = sorted(p for p in self.compose_dir.iterdir() if p.is_file())
        files += sorted(p for p in self.k8s_dir.iterdir() if p.is_file())
        return files + [self.dockerfile, self.docs]

    def rel(self, path):
        return str(Path(path).relative_to(self.base))


def copy_tree(dst):
    for sub in ("deploy/compose", "deploy/k8s", "deploy/grafana"):
        shutil.copytree(ROOT / sub, Path(dst) / sub)
    for f in ("deploy/Dockerfile", "deploy/Dockerfile.dockerignore", "docs/deploy.md"):
        (Path(dst) / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, Path(dst) / f)
    return Tree(dst)


# ----------------------------------------------------------------------------- checks ---
def check_compose_schema(tree):
    out = subprocess.run([str(VENV / "bin/check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                          str(tree.compose_dir / "compose.yaml")], capture_output=True, text=True)
    if out.returncode == 0:
        return []
    return [line.strip() for line in (out.stdout + out.stderr).splitlines()
            if line.strip() and "Schema validation errors" not in line] or ["check-jsonschema failed"]


def websocket_routes():
    routes = set()
    for path in (ROOT / "signaling/src").rglob("*.rs"):
        text = path.read_text(encoding="utf-8")
        routes.update(re.findall(r'\.route\(\s*"(/[^"]*)"\s*,\s*get\(\s*[\w:]*upgrade\s*\)', text))
    return routes


def check_compose(tree):
    errs = []
    compose = yaml.safe_load((tree.compose_dir / "compose.yaml").read_text(encoding="utf-8"))
    services = compose.get("services", {})
    for name in COMPOSE_SERVICES:
        if name not in services:
            errs.append(f"compose.yaml: service {name} is missing")
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        for dep in (deps if isinstance(deps, (list, dict)) else []):
            if dep not in services:
                errs.append(f"compose.yaml: {name} depends on unknown service {dep}")
        for f in svc.get("env_file", []) or []:
            f = f["path"] if isinstance(f, dict) else f
            p = tree.compose_dir / f
            if not p.exists() and not Path(str(p) + ".example").exists():
                errs.append(f"compose.yaml: {name}: env_file {f} (nor {f}.example) does not exist")
        for v in svc.get("volumes", []) or []:
            src = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
            if src.startswith((".", "/")) and not (tree.compose_dir / src).exists():
                errs.append(f"compose.yaml: {name}: volume source {src} does not exist")
        build = svc.get("build")
        if isinstance(build, dict):
            ctx = tree.compose_dir / build.get("context", ".")
            dockerfile = build.get("dockerfile", "Dockerfile")
            if not (ROOT / "Cargo.toml").exists() or ctx.resolve() != tree.base.resolve():
                errs.append(f"compose.yaml: {name}: build context {build.get('context')} is not the repository root")
            if not (tree.base / dockerfile).exists():
                errs.append(f"compose.yaml: {name}: dockerfile {dockerfile} does not exist")
        if str(svc.get("image", "")).startswith("kefu:"):
            hc = " ".join(map(str, (svc.get("healthcheck") or {}).get("test", [])))
            if "/healthz" not in hc or "8080" not in hc:
                errs.append(f"compose.yaml: {name}: no health check on GET /healthz, port 8080")
            cmd = svc.get("command") or []
            if "serve" not in cmd or "--role" not in cmd:
                errs.append(f"compose.yaml: {name}: command is not `serve --role …`")
    # nginx: upstreams are compose services, every WebSocket route reaches a location that
    # passes the upgrade on.
    conf = re.sub(r"#[^\n]*", "", (tree.compose_dir / "nginx.conf").read_text(encoding="utf-8"))
    for host in re.findall(r"^\s*server\s+([\w.-]+):\d+", conf, re.M):
        if host not in services:
            errs.append(f"nginx.conf: upstream server {host} is not a compose service")
    locations = {}
    for m in re.finditer(r"\blocation\s+([^\s{~=]+)\s*\{", conf):
        locations[m.group(1)] = conf[m.end() - 1:matching(conf, m.end() - 1, "{", "}")]
    routes = websocket_routes()
    if not routes:
        errs.append("signaling/src: no WebSocket routes found (`.route(\"/…\", get(…upgrade))`)")
    for route in sorted(routes):
        prefixes = [p for p in locations if route.startswith(p)]
        if not prefixes:
            errs.append(f"nginx.conf: no location serves WebSocket route {route}")
            continue
        block = locations[max(prefixes, key=len)]
        if not re.search(r"proxy_set_header\s+Upgrade\s+\$http_upgrade", block) or \
                not re.search(r"proxy_set_header\s+Connection\s+\$connection_upgrade", block):
            errs.append(f"nginx.conf: location {max(prefixes, key=len)} (WebSocket route {route}) does not pass Upgrade/Connection on")
    return errs


def coturn_configs(tree):
    out = [("deploy/compose/turnserver.conf", (tree.compose_dir / "turnserver.conf").read_text(encoding="utf-8"))]
    for path, doc in tree.k8s_docs():
        if doc.get("kind") == "ConfigMap":
            for key, text in (doc.get("data") or {}).items():
                if key.endswith(".conf") and "turn" in key:
                    out.append((f"{tree.rel(path)} ({key})", text))
    return out


def check_coturn(tree):
    help_text = subprocess.run(["turnserver", "-h"], capture_output=True, text=True)
    options = set(re.findall(r"--([a-z0-9][a-z0-9_-]*)", help_text.stdout + help_text.stderr))
    errs = []
    for where, text in coturn_configs(tree):
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            opt = line.split("=", 1)[0].strip()
            if opt not in options:
                errs.append(f"{where}: turnserver has no option {opt}")
    return errs


def check_k8s_schema(tree):
    errs = []
    docs = tree.k8s_docs()
    if not docs:
        return ["deploy/k8s: no manifests"]
    for path, doc in docs:
        for version in K8S_VERSIONS:
            try:
                kv.validate(doc, version, strict=True)
            except kv.ValidationError as e:
                where = ".".join(str(p) for p in e.path)
                errs.append(f"{tree.rel(path)}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')} "
                            f"(Kubernetes {version}): {where}: {e.message}")
            except (kv.SchemaNotFoundError, kv.InvalidSchemaError, kv.VersionNotSupportedError) as e:
                errs.append(f"{tree.rel(path)}: {e.message}")
    return errs


def pod_specs(doc):
    spec = doc.get("spec") or {}
    if doc.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
        tmpl = spec.get("template") or {}
        return [(tmpl.get("metadata", {}).get("labels", {}), tmpl.get("spec") or {})]
    if doc.get("kind") == "CronJob":
        tmpl = spec.get("jobTemplate", {}).get("spec", {}).get("template", {})
        return [(tmpl.get("metadata", {}).get("labels", {}), tmpl.get("spec") or {})]
    if doc.get("kind") == "Pod":
        return [(doc.get("metadata", {}).get("labels", {}), spec)]
    return []


def check_k8s_refs(tree):
    errs = []
    kust = yaml.safe_load((tree.k8s_dir / "kustomization.yaml").read_text(encoding="utf-8"))
    listed = set(kust.get("resources") or [])
    present = {p.name for p in tree.k8s_files()}
    for f in sorted(present - listed):
        errs.append(f"kustomization.yaml: {f} is not listed in resources")
    for f in sorted(listed - present):
        errs.append(f"kustomization.yaml: resource {f} does not exist")
    docs = tree.k8s_docs()
    by_kind = {}
    for _, doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    namespace = kust.get("namespace")
    for path, doc in docs:
        ns = doc.get("metadata", {}).get("namespace")
        if doc["kind"] != "Namespace" and namespace and ns not in (None, namespace):
            errs.append(f"{tree.rel(path)}: {doc['kind']}/{doc['metadata']['name']} in namespace {ns}, kustomization says {namespace}")

    def keys_of(kind, name):
        obj = by_kind.get(kind, {}).get(name)
        if obj is None:
            return None
        return set((obj.get("data") or {})) | set((obj.get("stringData") or {}))

    all_templates = [(doc, labels, spec) for _, doc in docs for labels, spec in pod_specs(doc)]
    for doc, labels, spec in all_templates:
        what = f"{doc['kind']}/{doc['metadata']['name']}"
        volumes = {v["name"]: v for v in spec.get("volumes", []) or []}
        for t in (doc.get("spec", {}).get("volumeClaimTemplates") or []):
            volumes[t["metadata"]["name"]] = t
        for v in volumes.values():
            if "configMap" in v and not v["configMap"].get("optional") and keys_of("ConfigMap", v["configMap"]["name"]) is None:
                errs.append(f"{what}: volume {v['name']}: ConfigMap {v['configMap']['name']} is not defined")
            if "secret" in v and not v["secret"].get("optional") and keys_of("Secret", v["secret"]["secretName"]) is None:
                errs.append(f"{what}: volume {v['name']}: Secret {v['secret']['secretName']} is not defined")
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            for ef in c.get("envFrom", []) or []:
                for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    ref = ef.get(key)
                    if ref and not ref.get("optional") and keys_of(kind, ref["name"]) is None:
                        errs.append(f"{what}: envFrom {kind} {ref['name']} is not defined")
            for e in c.get("env", []) or []:
                vf = e.get("valueFrom") or {}
                for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                    ref = vf.get(key)
                    if ref and not ref.get("optional"):
                        keys = keys_of(kind, ref["name"])
                        if keys is None:
                            errs.append(f"{what}: env {e['name']}: {kind} {ref['name']} is not defined")
                        elif ref["key"] not in keys:
                            errs.append(f"{what}: env {e['name']}: {kind} {ref['name']} has no key {ref['key']}")
            for m in c.get("volumeMounts", []) or []:
                if m["name"] not in volumes:
                    errs.append(f"{what}: container {c['name']} mounts unknown volume {m['name']}")
            ports = {p.get("name") for p in c.get("ports", []) or []}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                p = c.get(probe) or {}
                for handler in ("httpGet", "tcpSocket"):
                    port = (p.get(handler) or {}).get("port")
                    if isinstance(port, str) and port not in ports:
                        errs.append(f"{what}: {probe} names port {port}, which the container does not declare")

    def selects(selector):
        return [d for d, labels, _ in all_templates if selector and all(labels.get(k) == v for k, v in selector.items())]

    for name, svc in by_kind.get("Service", {}).items():
        if not selects(svc.get("spec", {}).get("selector")):
            errs.append(f"Service/{name}: its selector matches no pod template")
    for name, pdb in by_kind.get("PodDisruptionBudget", {}).items():
        if not selects(pdb.get("spec", {}).get("selector", {}).get("matchLabels")):
            errs.append(f"PodDisruptionBudget/{name}: its selector matches no pod template")
    for kind in ("Deployment", "StatefulSet"):
        for name, obj in by_kind.get(kind, {}).items():
            sel = obj["spec"]["selector"].get("matchLabels", {})
            labels = obj["spec"]["template"]["metadata"].get("labels", {})
            if any(labels.get(k) != v for k, v in sel.items()):
                errs.append(f"{kind}/{name}: selector does not match its own pod template")
    for name, sts in by_kind.get("StatefulSet", {}).items():
        svc = by_kind.get("Service", {}).get(sts["spec"].get("serviceName"))
        if svc is None or svc["spec"].get("clusterIP") != "None":
            errs.append(f"StatefulSet/{name}: serviceName {sts['spec'].get('serviceName')} is not a headless Service here")
    for name, ing in by_kind.get("Ingress", {}).items():
        for rule in ing["spec"].get("rules", []):
            for p in rule.get("http", {}).get("paths", []):
                backend = p["backend"].get("service", {})
                svc = by_kind.get("Service", {}).get(backend.get("name"))
                if svc is None:
                    errs.append(f"Ingress/{name}: backend Service {backend.get('name')} is not defined")
                    continue
                port = backend.get("port", {})
                names = {sp.get("name") for sp in svc["spec"].get("ports", [])}
                numbers = {sp.get("port") for sp in svc["spec"].get("ports", [])}
                if ("name" in port and port["name"] not in names) or ("number" in port and port["number"] not in numbers):
                    errs.append(f"Ingress/{name}: Service {backend.get('name')} has no port {port}")
    return errs


def check_kustomize_build(tree):
    out = subprocess.run(["kubectl", "kustomize", str(tree.k8s_dir)], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        return [f"kubectl kustomize: {out.stderr.strip()}"]
    rendered = [d for d in yaml.safe_load_all(out.stdout) if d]
    if len(rendered) != len(tree.k8s_docs()):
        return [f"kubectl kustomize rendered {len(rendered)} objects, the files hold {len(tree.k8s_docs())}"]
    return []


def walk_panels(panels):
    for p in panels or []:
        yield p
        yield from walk_panels(p.get("panels"))


def check_dashboard(tree, rust):
    errs = []
    try:
        dash = json.loads(tree.dashboard.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        return [f"kefu-dashboard.json: not JSON: {e}"]
    if dash.get("schemaVersion") != 39:
        errs.append(f"kefu-dashboard.json: schemaVersion {dash.get('schemaVersion')}, want 39")
    variables = (dash.get("templating") or {}).get("list") or []
    if not any(v.get("name") == "DS_PROMETHEUS" and v.get("type") == "datasource" and v.get("query") == "prometheus"
               for v in variables):
        errs.append("kefu-dashboard.json: no datasource variable DS_PROMETHEUS (type datasource, query prometheus)")
    exposed, labels, problems = rust.metrics()
    errs += problems
    exprs = []
    ids = set()
    for p in walk_panels(dash.get("panels")):
        if p.get("id") in ids:
            errs.append(f"kefu-dashboard.json: panel id {p.get('id')} is used twice")
        ids.add(p.get("id"))
        if "gridPos" not in p:
            errs.append(f"kefu-dashboard.json: panel {p.get('title')!r} has no gridPos")
        if p.get("type") == "row":
            continue
        for ds in [p.get("datasource")] + [t.get("datasource") for t in p.get("targets") or []]:
            if not ds or ds.get("uid") != "${DS_PROMETHEUS}":
                errs.append(f"kefu-dashboard.json: panel {p.get('title')!r}: datasource is not ${{DS_PROMETHEUS}}")
                break
        if not p.get("targets"):
            errs.append(f"kefu-dashboard.json: panel {p.get('title')!r} has no queries")
        for t in p.get("targets") or []:
            exprs.append((p.get("title"), t.get("expr", "")))
    for v in variables:
        if v.get("type") == "query":
            q = v.get("query")
            exprs.append((f"variable {v.get('name')}", q.get("query", "") if isinstance(q, dict) else q or ""))
            if v.get("definition"):
                exprs.append((f"variable {v.get('name')}", v["definition"]))
    for title, expr in exprs:
        names = re.findall(r"(?<![\w$.])(kefu_[A-Za-z0-9_:]*)", expr)
        if not names:
            errs.append(f"kefu-dashboard.json: {title!r}: query names no kefu metric: {expr!r}")
        for name in names:
            if name not in exposed:
                hint = ""
                for full, (base, kind) in exposed.items():
                    if base == name or full.startswith(name):
                        hint = f" (the {kind} {base} is exposed as {', '.join(sorted(f for f, (b, _) in exposed.items() if b == base))})"
                        break
                errs.append(f"kefu-dashboard.json: {title!r}: metric {name} does not exist{hint}")
        used = set()
        for m in re.finditer(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
            used.update(x.strip() for x in m.group(1).split(",") if x.strip())
        for m in re.finditer(r"\{([^{}]*)\}", expr):
            used.update(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)\s*\"", m.group(1)))
        for label in sorted(used - labels):
            errs.append(f"kefu-dashboard.json: {title!r}: label {label} is on no kefu metric (labels: {', '.join(sorted(labels))})")
        if "histogram_quantile" in expr and ("_bucket" not in expr or not re.search(r"\bby\s*\([^)]*\ble\b", expr)):
            errs.append(f"kefu-dashboard.json: {title!r}: histogram_quantile needs a _bucket series summed by le")
    return errs


ENV_RE = re.compile(r"(?<![A-Za-z0-9_])KEFU_[A-Z0-9_]*[A-Z0-9]")


def env_problem(name, tree_keys):
    if name in NOT_CLI_ENV:
        return None
    segs = name[len("KEFU_"):].lower().split("__")
    node = tree_keys
    for i, seg in enumerate(segs):
        if not isinstance(node, dict) or seg not in node:
            path = ".".join(segs[:i + 1])
            return f"{name}: no configuration key {path} (KEFU_<SECTION>__<KEY>, double underscores between levels)"
        node = node[seg]
    return None


def check_env(tree, config):
    errs = []
    for path in tree.env_sources():
        if not path.exists():
            continue
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for name in ENV_RE.findall(line):
                problem = env_problem(name, config)
                if problem:
                    errs.append(f"{tree.rel(path)}:{lineno}: {problem}")
    return errs


def toml_problems(data, node, path=()):
    for key, value in data.items():
        here = path + (key,)
        if not isinstance(node, dict) or key not in node:
            yield f"unknown key {'.'.join(here)}"
        elif isinstance(node[key], dict):
            if not isinstance(value, dict):
                yield f"{'.'.join(here)} must be a table"
            else:
                yield from toml_problems(value, node[key], here)


def check_toml(tree, config):
    errs = []
    sources = [(tree.rel(tree.compose_dir / "kefu.toml"), (tree.compose_dir / "kefu.toml").read_text(encoding="utf-8"))]
    for path, doc in tree.k8s_docs():
        if doc.get("kind") == "ConfigMap":
            for key, text in (doc.get("data") or {}).items():
                if key.endswith(".toml"):
                    sources.append((f"{tree.rel(path)} ({key})", text))
    if len(sources) < 2:
        errs.append("deploy/k8s: no ConfigMap with a kefu.toml")
    for where, text in sources:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            errs.append(f"{where}: not TOML: {e}")
            continue
        errs += [f"{where}: {p}" for p in toml_problems(data, config)]
    return errs


def dockerfile_stages(path):
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    args, stages = {}, []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "ARG" and not stages:
            k, _, v = rest.strip().partition("=")
            args[k] = v
        elif word == "FROM":
            image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), rest.split()[0])
            alias = rest.split()[2] if len(rest.split()) > 2 else str(len(stages))
            stages.append({"image": image, "name": alias, "lines": []})
        elif stages:
            stages[-1]["lines"].append((word, rest.strip()))
    return stages


_NEEDED = {}


def needed_packages(binary):
    """Debian packages that hold the shared libraries `binary` links (readelf + dpkg)."""
    if binary not in _NEEDED:
        _NEEDED[binary] = _needed_packages(binary)
    return _NEEDED[binary]


def _needed_packages(binary):
    dyn = subprocess.run(["readelf", "-d", str(binary)], capture_output=True, text=True, check=True).stdout
    sonames = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dyn)
    cache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    where = {}
    for m in re.finditer(r"^\s*(\S+) \(([^)]*)\) => (\S+)", cache, re.M):
        if "x86-64" in m.group(2) or "64bit" in m.group(2) or m.group(1) not in where:
            where.setdefault(m.group(1), m.group(3))
    # dpkg knows a library by the path its package installed (/lib or /usr/lib, the
    # symlink or the file it points at): ask for every candidate path in one call.
    candidates = {}
    for so in sonames:
        if so.startswith("ld-linux") or so not in where:
            continue
        lib = where[so]
        for p in {lib, os.path.realpath(lib)}:
            for q in {p, re.sub(r"^/lib/", "/usr/lib/", p), re.sub(r"^/usr/lib/", "/lib/", p)}:
                candidates[q] = so
    out = subprocess.run(["dpkg", "-S", *sorted(candidates)], capture_output=True, text=True).stdout
    packages = {}
    for line in out.splitlines():
        pkg, _, path = line.partition(": ")
        if path.strip() in candidates:
            packages.setdefault(candidates[path.strip()], pkg.split(":")[0].strip())
    unknown = [so for so in sonames if not so.startswith("ld-linux") and so not in packages]
    return packages, unknown


def kefu_binary():
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    if not target.is_absolute():
        target = ROOT / target
    for profile in ("debug", "release"):
        if (target / profile / "kefu").is_file():
            return target / profile / "kefu"
    return None


def check_dockerfile(tree, binary):
    errs = []
    stages = dockerfile_stages(tree.dockerfile)
    if len(stages) < 2:
        return ["Dockerfile: expected a build stage and a runtime stage"]
    if not any(re.match(r"rust:[\w.]*-?bookworm", s["image"]) for s in stages[:-1]):
        errs.append("Dockerfile: no build stage on a rust:*-bookworm image")
    final = stages[-1]
    if final["image"] != "debian:bookworm-slim":
        errs.append(f"Dockerfile: runtime stage is {final['image']}, want debian:bookworm-slim")
    users = [rest for word, rest in final["lines"] if word == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        errs.append("Dockerfile: the runtime stage does not switch to a non-root USER")
    exposed = set()
    for word, rest in final["lines"]:
        if word == "EXPOSE":
            exposed.update(p if "/" in p else p + "/tcp" for p in rest.split())
    for port in ("8080/tcp", "8081/tcp", "50000/udp", "50000/tcp"):
        if port not in exposed:
            errs.append(f"Dockerfile: EXPOSE lacks {port}")
    ignore = (tree.base / "deploy/Dockerfile.dockerignore")
    ignored = [l.strip().rstrip("/") for l in ignore.read_text().splitlines()
               if l.strip() and not l.startswith("#")] if ignore.exists() else []
    for stage in stages:
        for word, rest in stage["lines"]:
            if word not in ("COPY", "ADD") or "--from=" in rest:
                continue
            parts = [p for p in rest.split() if not p.startswith("--")]
            for src in parts[:-1]:
                if not (ROOT / src).exists():
                    errs.append(f"Dockerfile: COPY source {src} does not exist")
                elif src.rstrip("/") in ignored:
                    errs.append(f"Dockerfile: COPY source {src} is excluded by Dockerfile.dockerignore")
    installed = set()
    for word, rest in final["lines"]:
        if word == "RUN":
            for m in re.finditer(r"apt-get install ([^&;|]*)", rest):
                installed.update(w for w in m.group(1).split() if not w.startswith("-"))
    if binary is not None:
        packages, unknown = needed_packages(binary)
        for so, pkg in sorted(packages.items()):
            if pkg not in installed and pkg not in BASE_PACKAGES:
                errs.append(f"Dockerfile: runtime stage does not install {pkg} ({so}, NEEDED by {binary.name})")
        for so in unknown:
            errs.append(f"Dockerfile: cannot tell which package provides {so} (NEEDED by {binary.name})")
    return errs


# ------------------------------------------------------------------------------ main ---
def main():
    started = time.monotonic()
    rust = Rust(ROOT)
    config, cluster_note = rust.kefu_config()
    tree = Tree(ROOT)
    binary = kefu_binary()
    have = {tool: shutil.which(tool) is not None for tool in ("turnserver", "kubectl", "readelf", "ldconfig", "dpkg")}
    bin_note = ""
    if binary is None or not (have["readelf"] and have["ldconfig"] and have["dpkg"]):
        binary = None
        bin_note = " (no built kefu binary or no readelf/dpkg here: runtime libraries not compared)"
    else:
        bin_note = f" (runtime libraries compared with {binary})"

    checks = [
        ("compose: schema (check-jsonschema vendor.compose-spec)", lambda t: check_compose_schema(t)),
        ("compose: services, files, health checks, nginx WebSocket routes", lambda t: check_compose(t)),
        ("k8s: kubernetes-validate --strict, Kubernetes " + " and ".join(K8S_VERSIONS), lambda t: check_k8s_schema(t)),
        ("k8s: kustomization lists every manifest; references resolve", lambda t: check_k8s_refs(t)),
        ("grafana: dashboard JSON, ${DS_PROMETHEUS}, metric and label names exist", lambda t: check_dashboard(t, rust)),
        (f"config: KEFU_* variables are configuration keys; {cluster_note}", lambda t: check_env(t, config)),
        ("config: kefu.toml files (compose, k8s ConfigMap) use known keys", lambda t: check_toml(t, config)),
        ("Dockerfile: stages, non-root, ports, COPY sources" + bin_note, lambda t: check_dockerfile(t, binary)),
    ]
    if have["turnserver"]:
        checks.append(("coturn: every turnserver.conf option is one `turnserver -h` lists", check_coturn))
    if have["kubectl"]:
        checks.append(("k8s: kubectl kustomize renders every manifest", check_kustomize_build))

    failed = 0
    for name, fn in checks:
        errs = fn(tree)
        if errs:
            failed += 1
            print(f"FAIL {name}")
            for e in errs[:20]:
                print(f"       {e}")
            if len(errs) > 20:
                print(f"       … and {len(errs) - 20} more")
        else:
            print(f"ok   {name}")
    if not have["turnserver"]:
        print("skip coturn: options not checked (no turnserver here)")
    if not have["kubectl"]:
        print("skip k8s: kustomize build not tried (no kubectl here)")

    # Self-tests: each breaks a copy on purpose; the matching check must fail on it.
    def mutate(rel, old, new):
        def apply(t):
            path = t.base / rel
            text = path.read_text(encoding="utf-8")
            if old not in text:
                raise AssertionError(f"self-test is stale: {old!r} not in {rel}")
            path.write_text(text.replace(old, new, 1), encoding="utf-8")
        return apply

    selftests = [
        ("a misspelled compose key", "healtcheck", mutate("deploy/compose/compose.yaml", "    healthcheck:", "    healtcheck:"), check_compose_schema),
        ("a compose variable that is no config key", "cluster.node_idd", mutate("deploy/compose/compose.yaml", "KEFU_CLUSTER__NODE_ID: signaling-1", "KEFU_CLUSTER__NODE_IDD: signaling-1"), lambda t: check_env(t, config)),
        ("a single underscore between levels", "media_advertise_ip", mutate("deploy/k8s/media.yaml", "name: KEFU_MEDIA__ADVERTISE_IP", "name: KEFU_MEDIA_ADVERTISE_IP"), lambda t: check_env(t, config)),
        ("an unknown field in a Deployment", "imagePullPolicyy", mutate("deploy/k8s/signaling.yaml", "imagePullPolicy: IfNotPresent", "imagePullPolicy: IfNotPresent\n          imagePullPolicyy: Always"), check_k8s_schema),
        ("an unknown field in a StatefulSet spec", "replicaz", mutate("deploy/k8s/media.yaml", "  serviceName: kefu-media", "  serviceName: kefu-media\n  replicaz: 2"), check_k8s_schema),
        ("a manifest left out of kustomization.yaml", "coturn.yaml is not listed", mutate("deploy/k8s/kustomization.yaml", "  - coturn.yaml\n", ""), check_k8s_refs),
        ("a Secret key no pod can find", "has no key TURN_SECRET", mutate("deploy/k8s/coturn.yaml", "key: KEFU_SIGNALING__ICE__TURN_SECRET", "key: TURN_SECRET"), check_k8s_refs),
        ("an unknown kefu.toml key", "cluster.key_prefx", mutate("deploy/k8s/config.yaml", "key_prefix = ", "key_prefx = "), lambda t: check_toml(t, config)),
        ("a dashboard metric that does not exist", "kefu_sfu_packets_forwardd_total does not exist", mutate("deploy/grafana/kefu-dashboard.json", "kefu_sfu_packets_forwarded_total", "kefu_sfu_packets_forwardd_total"), lambda t: check_dashboard(t, rust)),
        ("a counter without _total", "kefu_beauty_frames_dropped does not exist", mutate("deploy/grafana/kefu-dashboard.json", "kefu_beauty_frames_dropped_total", "kefu_beauty_frames_dropped"), lambda t: check_dashboard(t, rust)),
        ("a label no metric has", "label cause", mutate("deploy/grafana/kefu-dashboard.json", "sum by (instance, reason)", "sum by (instance, cause)"), lambda t: check_dashboard(t, rust)),
        ("nginx without the WebSocket upgrade", "Upgrade/Connection", mutate("deploy/compose/nginx.conf", "proxy_set_header Upgrade $http_upgrade;", ""), check_compose),
        ("a Dockerfile running as root", "non-root USER", mutate("deploy/Dockerfile", "USER 10001:10001", "USER root"), lambda t: check_dockerfile(t, binary)),
    ]
    if binary is not None:
        selftests.append(("a runtime library left out of the image", "libopencv-video406", mutate("deploy/Dockerfile", " libopencv-video406", ""), lambda t: check_dockerfile(t, binary)))
    if have["turnserver"]:
        selftests.append(("a misspelled coturn option", "no option no-multicast-peer", mutate("deploy/compose/turnserver.conf", "no-multicast-peers", "no-multicast-peer"), check_coturn))

    for name, expect, breaker, fn in selftests:
        with tempfile.TemporaryDirectory(prefix="check-deploy-") as tmp:
            broken = copy_tree(tmp)
            try:
                breaker(broken)
                errs = fn(broken)
            except AssertionError as e:
                errs, stale = None, str(e)
            caught = [e for e in errs or [] if expect in e]
            if errs is None:
                failed += 1
                print(f"FAIL self-test: {name}: {stale}")
            elif not caught:
                failed += 1
                print(f"FAIL self-test: {name} was NOT caught (no error mentions {expect!r})")
                for e in errs[:5]:
                    print(f"       {e}")
            else:
                print(f"ok   self-test: {name} is caught: {caught[0][:120]}")

    took = time.monotonic() - started
    if failed:
        print(f"check-deploy: {failed} check(s) failed ({took:.1f} s)")
        sys.exit(1)
    print(f"check-deploy: all checks passed ({took:.1f} s)")


main()
PY
