#!/usr/bin/env python3
"""Validates deploy/: the Kubernetes manifests, the systemd units and the container build file.

It checks that the files parse and that they agree with each other and with the programs they
run: every --flag exists in the binary's --help, probes and Services point at declared container
ports, Service selectors select pods, the worker Deployment can drain (grace period above the
drain timeout), the HPA and PDB target the workers, the systemd units pass `systemd-analyze
verify` (when it exists), and the container image installs the libraries the binaries link.
Besides our programs a workload may run the official redis image, for the workers' shared
counters: it must not persist, must ask for a password from a Secret and admit only the workers,
and the workers' --redis must reach it through a Service with that Secret's password.

  validate_manifests.py --repo DIR --gateway BIN --controlplane BIN [--self-test] [-v]

--self-test copies deploy/ to a temporary directory, breaks it in known ways one at a time and
fails unless every break is reported. Exit status: 0 all good, 1 problems found, 2 bad usage.
"""

import argparse
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import urllib.parse

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the machine
    # A python3 earlier on PATH (pyenv, a venv) may lack the Debian package's module.
    SYSTEM_PYTHON = "/usr/bin/python3"
    if os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON) \
            and os.access(SYSTEM_PYTHON, os.X_OK):
        os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON, os.path.abspath(__file__), *sys.argv[1:]])
    print("validate_manifests: PyYAML is missing (Debian: apt-get install python3-yaml)",
          file=sys.stderr)
    sys.exit(2)

# libyaml's loader where PyYAML has it: several times faster, which the self-test feels.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# The admin endpoints of apim-gateway (dataplane/admin): the only paths a probe may use.
READINESS_PATH = "/readyz"
LIVENESS_PATH = "/healthz"
ADMIN_PATHS = {READINESS_PATH, LIVENESS_PATH}
# Packages debian:12-slim already has; the image need not install them.
SLIM_BASE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"}
PROGRAMS = ("apim-gateway", "apim-controlplane")
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
# The official Redis image (Docker Hub's library/redis), any tag or digest: the one image besides
# ours a workload may run, for the workers' shared counters (kubernetes/redis.yaml).
REDIS_IMAGE = re.compile(
    r"^(?:docker\.io/)?(?:library/)?redis(?::[\w][\w.-]*)?(?:@sha256:[0-9a-f]{64})?$")
REDIS_DEFAULT_PORT = 6379
# NAME.NAMESPACE.svc[.cluster.local]: a Service's name in the cluster's DNS.
SERVICE_HOST = re.compile(r"^([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?$")


# A tool's verdict, by the text it was given: the self-test validates dozens of copies of deploy/
# that each differ in one file, so kubectl and systemd-analyze need not see the others again.
_TOOL_RUNS = {}


def run_tool(argv, given, env=None):
    """subprocess.run(argv), once per distinct `given` (the text of what argv reads)."""
    key = (argv[0], argv[1], os.path.basename(argv[-1]), hashlib.sha256(given.encode()).hexdigest())
    if key not in _TOOL_RUNS:
        _TOOL_RUNS[key] = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    return _TOOL_RUNS[key]


def tree_text(directory):
    """The names and contents of the files below `directory`, as one text."""
    parts = []
    for root, _, files in sorted(os.walk(directory)):
        for f in sorted(files):
            with open(os.path.join(root, f), encoding="utf-8", errors="replace") as fh:
                parts.append(f"{os.path.relpath(os.path.join(root, f), directory)}\0{fh.read()}")
    return "\0".join(parts)


class Report:
    """Collects the outcome of each check; failures say the file and what is wrong."""

    def __init__(self, quiet=False, verbose=False):
        self.problems = []
        self.passed = 0
        self.quiet = quiet
        self.verbose = verbose and not quiet

    def ok(self, what):
        self.passed += 1
        if self.verbose:
            print(f"ok    {what}")

    def fail(self, where, what):
        self.problems.append(f"{where}: {what}")
        if self.verbose:
            print(f"FAIL  {where}: {what}")

    def note(self, what):
        if not self.quiet:
            print(f"note  {what}")

    def check(self, condition, where, ok_text, fail_text):
        if condition:
            self.ok(f"{where}: {ok_text}")
        else:
            self.fail(where, fail_text)
        return condition


# ---- the programs -----------------------------------------------------------------------------

class Program:
    """A binary's flags and their defaults, read from its --help output."""

    def __init__(self, name, path):
        self.name = name
        self.path = path
        out = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=20)
        if out.returncode != 0:
            raise RuntimeError(f"{path} --help exited {out.returncode}: {out.stderr.strip()}")
        self.help = out.stdout
        self.flags = set(re.findall(r"(?<![\w-])(--[a-z0-9][a-z0-9-]*)", self.help))
        # CLI11 prints a default as "--flag TYPE...=VALUE" at the end of the flag's line.
        self.defaults = {}
        for line in self.help.splitlines():
            m = re.match(r"\s*(?:-\w,)?(--[a-z0-9-]+)\s+\S.*=(\S+)\s*$", line)
            if m:
                self.defaults[m.group(1)] = m.group(2)


def parse_flags(args):
    """['--a', 'x', '--b=y', '--c'] -> {'--a': 'x', '--b': 'y', '--c': None}, in order."""
    flags = {}
    i = 0
    while i < len(args):
        arg = str(args[i])
        if arg.startswith("--"):
            if "=" in arg:
                name, value = arg.split("=", 1)
                flags[name] = value
            elif i + 1 < len(args) and not str(args[i + 1]).startswith("--"):
                flags[arg] = str(args[i + 1])
                i += 1
            else:
                flags[arg] = None
        i += 1
    return flags


def port_of(address):
    m = re.search(r":(\d+)$", address or "")
    return int(m.group(1)) if m else None


def host_of(address):
    return (address or "").rsplit(":", 1)[0]


def seconds(value):
    """'45', '45s', '1min 30s', '500ms' -> seconds (float); None if it cannot be read."""
    total, matched = 0.0, False
    units = {"": 1, "s": 1, "sec": 1, "ms": 0.001, "m": 60, "min": 60, "h": 3600}
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", str(value)):
        if unit not in units:
            return None
        total += float(number) * units[unit]
        matched = True
    return total if matched else None


# ---- Kubernetes -------------------------------------------------------------------------------

class Manifest:
    def __init__(self, path, index, doc):
        self.path = path
        self.index = index
        self.doc = doc

    @property
    def kind(self):
        return self.doc.get("kind")

    @property
    def name(self):
        return (self.doc.get("metadata") or {}).get("name")

    @property
    def namespace(self):
        return (self.doc.get("metadata") or {}).get("namespace", "default")

    def where(self, rel):
        return f"{rel(self.path)}[{self.index}] {self.kind}/{self.name}"


def load_yaml_files(deploy_dir, report, rel):
    """Every *.yaml/*.yml under deploy/, each document; parse errors are failures."""
    manifests = []
    for root, _, files in sorted(os.walk(deploy_dir)):
        for f in sorted(files):
            if not f.endswith((".yaml", ".yml")):
                continue
            path = os.path.join(root, f)
            try:
                with open(path, encoding="utf-8") as fh:
                    docs = list(yaml.load_all(fh, Loader=YAML_LOADER))
            except yaml.YAMLError as e:
                report.fail(rel(path), f"does not parse as YAML: {e}")
                continue
            count = 0
            for i, doc in enumerate(docs):
                if doc is None:
                    continue
                count += 1
                if not isinstance(doc, dict):
                    report.fail(f"{rel(path)}[{i}]", "document is not a mapping")
                    continue
                manifests.append(Manifest(path, i, doc))
            report.ok(f"{rel(path)}: parses ({count} documents)")
    return manifests


def pod_spec(m):
    spec = m.doc.get("spec") or {}
    if m.kind == "Pod":
        return spec
    return ((spec.get("template") or {}).get("spec")) or {}


def pod_labels(m):
    if m.kind == "Pod":
        return (m.doc.get("metadata") or {}).get("labels") or {}
    template = (m.doc.get("spec") or {}).get("template") or {}
    return (template.get("metadata") or {}).get("labels") or {}


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def container_program(container):
    command = container.get("command") or []
    argv = list(command) + list(container.get("args") or [])
    return os.path.basename(str(argv[0])) if argv else None


def is_redis(container):
    return REDIS_IMAGE.match(str(container.get("image") or "")) is not None


def container_argv_flags(container):
    """The flags of the container's command line (command after the program, then args)."""
    command = [str(c) for c in container.get("command") or []]
    args = [str(a) for a in container.get("args") or []]
    return command[1:] + args if command else args[1:]


def resolve_port(container, port):
    """A probe's or targetPort's port (number or name) -> the declared containerPort or None."""
    for p in container.get("ports") or []:
        if isinstance(port, int) and p.get("containerPort") == port:
            return p.get("containerPort")
        if isinstance(port, str) and p.get("name") == port:
            return p.get("containerPort")
    return None


def check_kubernetes(manifests, programs, report, rel, k8s_dir):
    resources = [m for m in manifests if m.path.startswith(k8s_dir)]
    by_kind = {}
    for m in resources:
        where = f"{rel(m.path)}[{m.index}]"
        if m.kind == "Kustomization":
            check_kustomization(m, resources, report, rel)
            continue
        missing = [f for f in ("apiVersion", "kind") if not m.doc.get(f)]
        if not m.name:
            missing.append("metadata.name")
        if report.check(not missing, where,
                        f"{m.kind}/{m.name} has apiVersion, kind, metadata.name",
                        f"missing {', '.join(missing)}"):
            by_kind.setdefault(m.kind, []).append(m)

    namespaces = {m.name for m in by_kind.get("Namespace", [])}
    secrets = {(m.namespace, m.name): m for m in by_kind.get("Secret", [])}
    workloads = [m for k in sorted(WORKLOAD_KINDS | {"Pod"}) for m in by_kind.get(k, [])]
    services = by_kind.get("Service", [])

    users = {}
    for m in resources:
        if m.kind not in ("Namespace", "Kustomization", None) and m.name:
            users.setdefault(m.namespace, []).append(f"{m.kind}/{m.name}")
    for ns, objects in sorted(users.items()):
        report.check(ns in namespaces, "kubernetes", f"namespace {ns} is declared",
                     f"namespace {ns!r} (of {', '.join(objects)}) has no Namespace manifest")

    workers, controlplanes, redises = [], [], []
    for w in workloads:
        check_workload(w, programs, secrets, report, rel)
        for c in pod_spec(w).get("containers") or []:
            prog = container_program(c)
            if is_redis(c):
                redises.append(RedisServer(w, c))
            elif prog == "apim-gateway":
                workers.append((w, c))
            elif prog == "apim-controlplane":
                controlplanes.append((w, c))

    for s in services:
        check_service(s, workloads, report, rel)

    if not report.check(workers, "kubernetes", "a workload runs apim-gateway",
                        "no Deployment runs apim-gateway"):
        return
    if not report.check(controlplanes, "kubernetes", "a workload runs apim-controlplane",
                        "no StatefulSet runs apim-controlplane"):
        return
    for w, c in workers:
        check_worker(w, c, programs["apim-gateway"], by_kind, services, controlplanes, report, rel)
        check_worker_redis(w, c, services, redises, by_kind, secrets, report, rel)
    for w, c in controlplanes:
        check_controlplane(w, c, programs["apim-controlplane"], services, report, rel)
    for r in redises:
        check_redis(r, services, by_kind, workers, secrets, report, rel)


def check_kustomization(m, resources, report, rel):
    where = rel(m.path)
    base = os.path.dirname(m.path)
    listed = [str(r) for r in m.doc.get("resources") or []]
    for r in listed:
        report.check(os.path.exists(os.path.join(base, r)), where, f"lists {r}",
                     f"lists {r}, which does not exist")
    manifest_files = {os.path.relpath(x.path, base) for x in resources
                      if x.kind != "Kustomization" and os.path.dirname(x.path) == base}
    for f in sorted(manifest_files):
        if ".example." in f:
            report.check(f not in listed, where, f"leaves the example {f} out",
                         f"lists {f}: example Secrets with placeholders must not be applied")
        else:
            report.check(f in listed, where, f"{f} is listed", f"{f} is not listed in resources")
    kubectl = shutil.which("kubectl")
    if not kubectl:
        report.note(f"{where}: kubectl not found, `kubectl kustomize` skipped")
        return
    out = run_tool([kubectl, "kustomize", base], tree_text(base))
    report.check(out.returncode == 0, where, "`kubectl kustomize` builds",
                 f"`kubectl kustomize` failed: {out.stderr.strip()[-400:]}")


def check_workload(w, programs, secrets, report, rel):
    where = w.where(rel)
    spec = pod_spec(w)
    selector = ((w.doc.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if w.kind != "Pod":
        report.check(selects(selector, pod_labels(w)), where,
                     "selector matches the pod template labels",
                     f"spec.selector.matchLabels {selector} does not match the template labels "
                     f"{pod_labels(w)}")
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    for t in (w.doc.get("spec") or {}).get("volumeClaimTemplates") or []:
        volumes[(t.get("metadata") or {}).get("name")] = {"persistentVolumeClaim": {}}

    for v in volumes.values():
        secret = (v.get("secret") or {}).get("secretName")
        if secret:
            report.check((w.namespace, secret) in secrets, where, f"Secret {secret} has an example",
                         f"volume {v.get('name')} uses Secret {secret!r}, which "
                         "secrets.example.yaml does not show")

    pod_security = spec.get("securityContext") or {}
    for c in spec.get("containers") or []:
        cwhere = f"{where} container {c.get('name')}"
        prog = container_program(c)
        program = None if is_redis(c) else programs.get(prog)
        if not report.check(program is not None or is_redis(c), cwhere,
                            f"runs {prog if program else 'the redis image ' + c.get('image')}",
                            f"runs {prog!r} from image {c.get('image')!r}: not one of "
                            f"{', '.join(PROGRAMS)}, nor the official redis image"):
            continue
        flags = [a for a in container_argv_flags(c) if a.startswith("--")] if program else []
        for flag in flags:
            name = flag.split("=", 1)[0]
            report.check(name in program.flags, cwhere, f"{name} is a flag of {prog}",
                         f"{name} is not a flag of {prog} (see `{prog} --help`)")

        env = {e.get("name"): e for e in c.get("env") or []}
        for arg in container_argv_flags(c):
            for var in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", arg):
                report.check(var in env, cwhere, f"$({var}) is defined in env",
                             f"argument {arg!r} uses $({var}), which the container's env does "
                             "not define (Kubernetes would pass it literally)")
        for e in env.values():
            ref = ((e.get("valueFrom") or {}).get("secretKeyRef")) or {}
            if ref:
                secret = secrets.get((w.namespace, ref.get("name")))
                report.check(ref.get("key") in example_keys(secret), cwhere,
                             f"env {e.get('name')} reads Secret {ref.get('name')} key "
                             f"{ref.get('key')}",
                             f"env {e.get('name')} reads Secret {ref.get('name')!r} key "
                             f"{ref.get('key')!r}, which secrets.example.yaml does not show")

        for probe_kind in ("readinessProbe", "livenessProbe", "startupProbe"):
            probe = c.get(probe_kind)
            if not probe:
                continue
            if "exec" in probe:
                report.check(bool(probe["exec"].get("command")), cwhere,
                             f"{probe_kind} runs a command", f"{probe_kind} exec has no command")
                continue
            handler = probe.get("httpGet") or probe.get("tcpSocket") or probe.get("grpc") or {}
            port = handler.get("port")
            declared = [p.get("name") or p.get("containerPort") for p in c.get("ports") or []]
            report.check(resolve_port(c, port) is not None, cwhere,
                         f"{probe_kind} port {port} is a declared container port",
                         f"{probe_kind} port {port!r} is not a declared containerPort {declared}")
            if "httpGet" in probe:
                path = probe["httpGet"].get("path")
                report.check(path in ADMIN_PATHS, cwhere,
                             f"{probe_kind} path {path} is an admin endpoint",
                             f"{probe_kind} path {path!r} is not an admin endpoint "
                             f"({', '.join(sorted(ADMIN_PATHS))})")

        mounts = c.get("volumeMounts") or []
        for mount in mounts:
            name = mount.get("name")
            report.check(name in volumes, cwhere, f"mount {name} is a volume",
                         f"volumeMount {name!r} names no volume or volumeClaimTemplate")

        security = c.get("securityContext") or {}
        non_root = security.get("runAsNonRoot", pod_security.get("runAsNonRoot"))
        user = security.get("runAsUser", pod_security.get("runAsUser"))
        report.check(non_root is True and user != 0, cwhere, "runs as non-root",
                     "securityContext must set runAsNonRoot: true (and not runAsUser: 0)")
        report.check(security.get("allowPrivilegeEscalation") is False, cwhere,
                     "allowPrivilegeEscalation is false", "set allowPrivilegeEscalation: false")
        report.check(bool((c.get("resources") or {}).get("requests")), cwhere,
                     "has resource requests", "no resources.requests")


def mount_for(container, volumes, path):
    """The volumeMount that holds path (longest mountPath prefix), or None."""
    best = None
    for mount in container.get("volumeMounts") or []:
        mp = mount.get("mountPath", "").rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            if best is None or len(mp) > len(best.get("mountPath", "")):
                best = mount
    return best


def check_writable(w, c, path, flag, report, where, want=None):
    volumes = {v.get("name"): v for v in pod_spec(w).get("volumes") or []}
    claims = {(t.get("metadata") or {}).get("name")
              for t in (w.doc.get("spec") or {}).get("volumeClaimTemplates") or []}
    mount = mount_for(c, volumes, path)
    read_only_root = (c.get("securityContext") or {}).get("readOnlyRootFilesystem") is True
    if mount is None:
        report.check(not read_only_root, where, f"{flag} {path} on the root filesystem",
                     f"{flag} {path} is on the read-only root filesystem: mount a volume there")
        return
    name = mount.get("name")
    writable = not mount.get("readOnly") and (name in claims or "emptyDir" in volumes.get(name, {})
                                             or "persistentVolumeClaim" in volumes.get(name, {}))
    report.check(writable, where, f"{flag} {path} is on writable volume {name}",
                 f"{flag} {path} is on volume {name!r}, which is not a writable emptyDir or claim")
    if want == "claim":
        report.check(name in claims or "persistentVolumeClaim" in volumes.get(name, {}), where,
                     f"{flag} is on a persistent volume",
                     f"{flag} {path} is not on a PersistentVolumeClaim: the database would be lost")


def secret_file(w, c, path):
    """(Secret name, key) of the file `path` on a Secret volume of the pod (key None if the
    volume's items do not project it), or None when `path` is not on a Secret volume."""
    mount = mount_for(c, {}, path)
    if mount is None:
        return None
    volumes = {v.get("name"): v for v in pod_spec(w).get("volumes") or []}
    secret = volumes.get(mount.get("name"), {}).get("secret")
    if secret is None:
        return None
    inside = path[len(mount.get("mountPath", "").rstrip("/")) + 1:]
    items = secret.get("items")
    key = next((i.get("key") for i in items if i.get("path") == inside), None) if items else inside
    return secret.get("secretName"), key


def on_secret_volume(w, c, path):
    """Whether `path` is on a volume of the pod that comes from a Secret."""
    return secret_file(w, c, path) is not None


def check_on_secret_volumes(w, c, flags, names, report, where):
    """Each of the file flags `names` that is given names a file on a Secret volume."""
    for flag in names:
        path = flags.get(flag)
        if path:
            report.check(on_secret_volume(w, c, path), where,
                         f"{flag} {path} is on a Secret volume",
                         f"{flag} {path} is not on a Secret volume")


def example_keys(secret):
    """The keys an example Secret shows (none if there is no example)."""
    if secret is None:
        return set()
    return set((secret.doc.get("stringData") or {}) | (secret.doc.get("data") or {}))


def check_service(s, workloads, report, rel):
    where = s.where(rel)
    spec = s.doc.get("spec") or {}
    selector = spec.get("selector") or {}
    selected = [w for w in workloads
                if w.namespace == s.namespace and selects(selector, pod_labels(w))]
    if not report.check(selected, where, f"selector {selector} matches pods of "
                        f"{', '.join(f'{w.kind}/{w.name}' for w in selected)}",
                        f"selector {selector} matches no pod template's labels"):
        return
    for port in spec.get("ports") or []:
        target = port.get("targetPort", port.get("port"))
        for w in selected:
            containers = pod_spec(w).get("containers") or []
            found = any(resolve_port(c, target) is not None for c in containers)
            report.check(found, where,
                         f"port {port.get('port')} -> targetPort {target} on {w.name}",
                         f"port {port.get('port')}: targetPort {target!r} is not a containerPort "
                         f"of {w.kind}/{w.name}")


def check_worker(w, c, program, by_kind, services, controlplanes, report, rel):
    where = w.where(rel)
    spec = w.doc.get("spec") or {}
    pod = pod_spec(w)
    flags = parse_flags(container_argv_flags(c))
    value = lambda f: flags.get(f, program.defaults.get(f))  # noqa: E731

    report.check(w.kind == "Deployment", where, "workers are a Deployment",
                 f"apim-gateway runs in a {w.kind}, expected a Deployment")
    replicas = spec.get("replicas", 1)
    report.check(isinstance(replicas, int) and replicas >= 2, where, f"replicas {replicas} >= 2",
                 f"replicas is {replicas}: at least 2 workers, so one can drain while another "
                 "serves")

    # The process must listen where the pod says it does, and the admin listener must be
    # reachable by the kubelet.
    declared = {p.get("containerPort") for p in c.get("ports") or []}
    for flag in ("--listen", "--admin-listen"):
        port = port_of(value(flag))
        report.check(port in declared, where, f"{flag} {value(flag)} port is a containerPort",
                     f"{flag} {value(flag)!r}: port {port} is not a declared containerPort "
                     f"{sorted(declared)}")
    admin = value("--admin-listen")
    report.check(host_of(admin) not in LOOPBACK_HOSTS, where,
                 f"--admin-listen {admin} is reachable",
                 f"--admin-listen {admin!r} is loopback: the kubelet cannot probe it (use 0.0.0.0)")
    admin_port = port_of(admin)
    probes = {k: c.get(k) for k in ("readinessProbe", "livenessProbe")}
    for kind, want in (("readinessProbe", READINESS_PATH), ("livenessProbe", LIVENESS_PATH)):
        probe = probes[kind]
        http = (probe or {}).get("httpGet")
        if not report.check(http is not None, where, f"{kind} is an httpGet",
                            f"{kind} must be an httpGet on {want}"):
            continue
        report.check(http.get("path") == want, where, f"{kind} path is {want}",
                     f"{kind} path is {http.get('path')!r}, expected {want}")
        report.check(resolve_port(c, http.get("port")) == admin_port, where,
                     f"{kind} probes the admin port {admin_port}",
                     f"{kind} port {http.get('port')!r} is not the --admin-listen port "
                     f"{admin_port}")

    drain = float(value("--drain-timeout") or 0)
    pre_stop = ((c.get("lifecycle") or {}).get("preStop")) or {}
    pre_stop_cmd = [str(x) for x in (pre_stop.get("exec") or {}).get("command") or []]
    pre_stop_sleep = 0.0
    if pre_stop_cmd[:1] == ["sleep"] and len(pre_stop_cmd) == 2:
        pre_stop_sleep = float(pre_stop_cmd[1])
    elif "sleep" in pre_stop:
        pre_stop_sleep = float(pre_stop["sleep"].get("seconds", 0))
    report.check(bool(pre_stop), where, f"preStop hook waits {pre_stop_sleep:g} s",
                 "no preStop hook: SIGTERM would arrive before the pod leaves the Service "
                 "endpoints")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    report.check(grace > drain + pre_stop_sleep, where,
                 f"terminationGracePeriodSeconds {grace} > preStop {pre_stop_sleep:g} + "
                 f"--drain-timeout {drain:g}",
                 f"terminationGracePeriodSeconds {grace} is not above preStop "
                 f"{pre_stop_sleep:g} s + --drain-timeout {drain:g} s: the kubelet would kill "
                 "streams mid-drain")

    check_writable(w, c, value("--snapshot-cache"), "--snapshot-cache", report, where)
    check_on_secret_volumes(w, c, flags, ("--gateway-token-file", "--ca-file"), report, where)
    # The worker token crosses the network to the control plane: over TLS only.
    report.check(("--ca-file" in flags or "--tls" in flags) and "--allow-insecure" not in flags,
                 where, "joins the control plane over TLS",
                 "joins the control plane in plaintext: give --ca-file (the CA of the control "
                 "plane's certificate, from a Secret) and drop --allow-insecure")

    # --control-plane NAME.NAMESPACE.svc[.cluster.local]:PORT: a Service of the control plane.
    cp = flags.get("--control-plane", "")
    if report.check(SERVICE_HOST.match(host_of(cp)) and port_of(cp), where,
                    f"--control-plane {cp} is a Service address",
                    f"--control-plane {cp!r} is not NAME.NAMESPACE.svc:PORT"):
        check_service_address("--control-plane", host_of(cp), port_of(cp), services,
                              [cw for cw, _ in controlplanes], "the control plane's pods",
                              report, where)

    hpas = [h for h in by_kind.get("HorizontalPodAutoscaler", []) if h.namespace == w.namespace]
    target_hpas = []
    for h in hpas:
        ref = (h.doc.get("spec") or {}).get("scaleTargetRef") or {}
        if ref.get("kind") == "Deployment" and ref.get("name") == w.name \
                and ref.get("apiVersion") == "apps/v1":
            target_hpas.append(h)
    report.check(len(target_hpas) == 1, where, "one HorizontalPodAutoscaler targets it",
                 f"{len(target_hpas)} HorizontalPodAutoscalers target Deployment {w.name} "
                 f"(scaleTargetRef apps/v1 Deployment {w.name}); found "
                 f"{[(h.doc.get('spec') or {}).get('scaleTargetRef') for h in hpas]}")
    for h in target_hpas:
        hspec = h.doc.get("spec") or {}
        report.check(h.doc.get("apiVersion") == "autoscaling/v2", h.where(rel), "is autoscaling/v2",
                     f"apiVersion {h.doc.get('apiVersion')}, expected autoscaling/v2")
        report.check(hspec.get("minReplicas", 1) >= 2, h.where(rel), "minReplicas >= 2",
                     f"minReplicas {hspec.get('minReplicas', 1)}: keep at least 2 workers")
        cpu = [x for x in hspec.get("metrics") or []
               if (x.get("resource") or {}).get("name") == "cpu"]
        report.check(bool(cpu), h.where(rel), "scales on CPU", "no CPU resource metric")
        report.check(bool(((c.get("resources") or {}).get("requests") or {}).get("cpu")), where,
                     "has a CPU request for the HPA",
                     "no CPU request: the HPA cannot compute usage")

    pdbs = [p for p in by_kind.get("PodDisruptionBudget", []) if p.namespace == w.namespace]
    target_pdbs = [p for p in pdbs if selects(((p.doc.get("spec") or {}).get("selector") or {})
                                              .get("matchLabels") or {}, pod_labels(w))]
    report.check(len(target_pdbs) == 1, where, "one PodDisruptionBudget selects its pods",
                 f"{len(target_pdbs)} PodDisruptionBudgets select the worker pods {pod_labels(w)}")
    for p in target_pdbs:
        min_available = (p.doc.get("spec") or {}).get("minAvailable")
        report.check(isinstance(min_available, int) and 1 <= min_available < replicas, p.where(rel),
                     f"minAvailable {min_available} lets one worker at a time go",
                     f"minAvailable {min_available!r}: must be at least 1 and below replicas "
                     f"({replicas}), else node drains block")


def check_service_address(flag, host, port, services, targets, what, report, where):
    """`flag` names the Service `host` (NAME.NAMESPACE.svc): it exists, exposes `port` and selects
    the pods of the workloads `targets`. Returns (Service, its port entry), or None."""
    m = SERVICE_HOST.match(host)
    name, ns = m.group(1), m.group(2)
    svc = next((s for s in services if s.name == name and s.namespace == ns), None)
    if not report.check(svc is not None, where, f"Service {ns}/{name} exists",
                        f"{flag} names Service {ns}/{name}, which is not defined"):
        return None
    sspec = svc.doc.get("spec") or {}
    entry = next((p for p in sspec.get("ports") or [] if p.get("port") == port), None)
    report.check(entry is not None, where, f"Service {name} exposes port {port}",
                 f"Service {name} has no port {port}")
    selected = any(selects(sspec.get("selector") or {}, pod_labels(t)) for t in targets)
    report.check(selected, where, f"Service {name} selects {what}",
                 f"Service {name} does not select {what}")
    return (svc, entry) if entry is not None and selected else None


def check_controlplane(w, c, program, services, report, rel):
    where = w.where(rel)
    spec = w.doc.get("spec") or {}
    flags = parse_flags(container_argv_flags(c))
    value = lambda f: flags.get(f, program.defaults.get(f))  # noqa: E731
    report.check(w.kind == "StatefulSet", where, "the control plane is a StatefulSet",
                 f"apim-controlplane runs in a {w.kind}, expected a StatefulSet")
    report.check(spec.get("replicas", 1) == 1, where, "replicas is 1 (SQLite is single-writer)",
                 f"replicas is {spec.get('replicas')}: SQLite is single-writer, run exactly 1")
    listen = value("--listen")
    declared = {p.get("containerPort") for p in c.get("ports") or []}
    report.check(port_of(listen) in declared, where, f"--listen {listen} port is a containerPort",
                 f"--listen {listen!r}: port {port_of(listen)} is not a declared containerPort")
    report.check(host_of(listen) not in LOOPBACK_HOSTS, where, f"--listen {listen} is reachable",
                 f"--listen {listen!r} is loopback: workers in other pods cannot connect")
    for kind in ("readinessProbe", "livenessProbe"):
        probe = c.get(kind) or {}
        port = (probe.get("tcpSocket") or probe.get("grpc") or {}).get("port")
        report.check(port is not None and resolve_port(c, port) == port_of(listen), where,
                     f"{kind} checks the gRPC port",
                     f"{kind} must be a tcpSocket (or grpc) probe on the --listen port "
                     f"{port_of(listen)}, got {probe}")
    check_writable(w, c, value("--db"), "--db", report, where, want="claim")
    report.check("--tls-cert-file" in flags and "--tls-key-file" in flags
                 and "--allow-insecure" not in flags, where, "serves gRPC over TLS",
                 f"--listen {listen!r} serves gRPC in plaintext: tokens would cross the network "
                 "readable; give --tls-cert-file and --tls-key-file (from a Secret)")
    check_on_secret_volumes(w, c, flags, ("--tls-cert-file", "--tls-key-file"), report, where)
    service_name = spec.get("serviceName")
    headless = next((s for s in services if s.name == service_name and s.namespace == w.namespace),
                    None)
    is_headless = headless is not None \
        and (headless.doc.get("spec") or {}).get("clusterIP") == "None"
    report.check(is_headless, where, f"serviceName {service_name} is a headless Service",
                 f"serviceName {service_name!r} is not a headless Service (clusterIP: None)")
    env = {e.get("name"): e for e in c.get("env") or []}
    token_env = (env.get("APIM_ADMIN_TOKEN") or {}).get("valueFrom") or {}
    token_from_secret = "secretKeyRef" in token_env
    report.check(token_from_secret or "--admin-token-file" in flags, where,
                 "the admin token comes from a Secret",
                 "set APIM_ADMIN_TOKEN from a secretKeyRef (or --admin-token-file on a Secret "
                 "volume)")


# ---- Redis: the workers' shared counters --------------------------------------------------------

def shell_words(container_strings):
    """Command-line strings -> words: a string that is a shell script (has blanks) is split as sh
    would split it, so `sh -c "... redis-server --save '' ..."` reads like a plain command line."""
    words = []
    for text in container_strings:
        text = str(text)
        if re.search(r"\s", text):
            try:
                words += shlex.split(text.replace("\\\n", " "), comments=True)
            except ValueError:
                words += text.split()
        else:
            words.append(text)
    return words


def redis_settings(words):
    """redis-server settings in a command line: `--name value` flags, and `name value` lines of a
    config text written inline (printf 'requirepass %s\\n'); the last one given wins."""
    settings = {}
    for i, word in enumerate(words):
        if word.startswith("--") and len(word) > 2 and i + 1 < len(words):
            settings[word[2:]] = words[i + 1]
        elif re.search(r"\s", word):
            for line in re.split(r"\n|\\n", word):
                parts = line.split(None, 1)
                if len(parts) == 2 and re.fullmatch(r"[a-z][a-z-]*", parts[0]):
                    settings[parts[0]] = parts[1].strip()
    return settings


def is_substituted(value):
    """Whether a password in a command line is filled in when it runs ($VAR, $(VAR), $(cat FILE),
    a printf %s), rather than written there."""
    return str(value).strip("\"'").startswith(("$", "%"))


def literal_passwords(c):
    """Passwords written into a container's command, probes or env: [(where, what)]."""
    found = []
    lists = [("command", (c.get("command") or []) + (c.get("args") or []))]
    for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
        lists.append((kind, ((c.get(kind) or {}).get("exec") or {}).get("command") or []))
    for where, strings in lists:
        words = shell_words(strings)
        client = "redis-cli" in words
        for i, word in enumerate(words):
            value = None
            if (word in ("requirepass", "--requirepass", "--masterauth", "--pass")
                    or (client and word == "-a")) and i + 1 < len(words):
                value = words[i + 1]
            elif word.startswith("REDISCLI_AUTH="):
                value = word.split("=", 1)[1]
            if value is not None and not is_substituted(value):
                found.append((where, f"{word} {value[:2]}..."))
        setting = redis_settings(words).get("requirepass")
        if setting is not None and not is_substituted(setting):
            found.append((where, f"requirepass {setting[:2]}..."))
    for e in c.get("env") or []:
        if re.search(r"PASS|AUTH|SECRET", str(e.get("name")), re.I) and "value" in e:
            found.append(("env", f"{e.get('name')} has a value"))
    return found


class RedisServer:
    """A container running the redis image, and what the workers need to know of it: the port
    it listens on and the Secrets (name, key) its password comes from."""

    def __init__(self, w, c):
        self.w, self.c = w, c
        self.words = shell_words((c.get("command") or []) + (c.get("args") or []))
        self.settings = redis_settings(self.words)
        port = self.settings.get("port", REDIS_DEFAULT_PORT)
        self.port = int(port) if str(port).isdigit() else None
        # The Secrets the command line reads: a file on a Secret volume, or an env var from one.
        text = " ".join(self.words)
        self.password_secrets = set()
        for mount in c.get("volumeMounts") or []:
            path = mount.get("mountPath", "").rstrip("/")
            for m in re.finditer(re.escape(path) + r"/([\w.-]+)", text):
                found = secret_file(w, c, f"{path}/{m.group(1)}")
                if found:
                    self.password_secrets.add(found)
        for e in c.get("env") or []:
            ref = ((e.get("valueFrom") or {}).get("secretKeyRef")) or {}
            name = re.escape(str(e.get("name")))
            if ref and re.search(rf"\$\(?\{{?{name}\b", text):
                self.password_secrets.add((ref.get("name"), ref.get("key")))


# Units of memory sizes: Redis's (any case) and Kubernetes' quantities.
REDIS_UNITS = {"": 1, "k": 10**3, "kb": 2**10, "m": 10**6, "mb": 2**20, "g": 10**9, "gb": 2**30}
QUANTITY_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20,
                  "Gi": 2**30}


def memory_bytes(value, units):
    """'192mb' (REDIS_UNITS), '256Mi' (QUANTITY_UNITS) -> bytes; None if it cannot be read."""
    m = re.fullmatch(r"(\d+)\s*([a-zA-Z]*)", str(value or "").strip())
    unit = m and (m.group(2).lower() if units is REDIS_UNITS else m.group(2))
    return int(m.group(1)) * units[unit] if m and unit in units else None


def label_selector_matches(selector, labels):
    """A LabelSelector (matchLabels, matchExpressions) against labels; an empty one matches all."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        if (op == "In" and labels.get(key) not in values) \
                or (op == "NotIn" and labels.get(key) in values) \
                or (op == "Exists" and key not in labels) \
                or (op == "DoesNotExist" and key in labels):
            return False
    return True


def ingress_policies(policies, w):
    """The NetworkPolicies that limit who reaches the pods of workload `w`."""
    return [p for p in policies if p.namespace == w.namespace
            and label_selector_matches((p.doc.get("spec") or {}).get("podSelector"), pod_labels(w))
            and "Ingress" in ((p.doc.get("spec") or {}).get("policyTypes") or ["Ingress"])]


def admits(policy, labels, port, port_name):
    """Whether a NetworkPolicy admits pods with `labels` of its own namespace on the port."""
    for rule in (policy.doc.get("spec") or {}).get("ingress") or []:
        peers = rule.get("from") or []
        ports = rule.get("ports") or []
        peer_ok = not peers or any(
            "podSelector" in peer and "namespaceSelector" not in peer
            and label_selector_matches(peer["podSelector"], labels) for peer in peers)
        port_ok = not ports or any(p.get("port") in (port, port_name) or p.get("port") is None
                                   for p in ports)
        if peer_ok and port_ok:
            return True
    return False


def check_redis(r, services, by_kind, workers, secrets, report, rel):
    w, c = r.w, r.c
    where = f"{w.where(rel)} container {c.get('name')}"
    spec = w.doc.get("spec") or {}
    # Two servers behind one Service would each count part of the calls.
    report.check(spec.get("replicas", 1) == 1, where, "one Redis replica",
                 f"replicas is {spec.get('replicas')}: run exactly 1 (two Redis servers behind the "
                 "Service would each count part of the calls)")
    if w.kind == "Deployment":
        strategy = (spec.get("strategy") or {}).get("type", "RollingUpdate")
        report.check(strategy == "Recreate", where, "strategy Recreate",
                     f"strategy {strategy}: use Recreate (a rolling update runs two Redis servers "
                     "side by side, each counting part of the calls)")
    report.check(bool(c.get("readinessProbe")), where, "has a readinessProbe",
                 "no readinessProbe: the Service would send workers to a Redis not yet serving")
    declared = {p.get("containerPort") for p in c.get("ports") or []}
    report.check(r.port in declared, where, f"listens on declared containerPort {r.port}",
                 f"Redis listens on port {r.settings.get('port', REDIS_DEFAULT_PORT)!r}, not a "
                 f"declared containerPort {sorted(declared)}")
    fronted = [s for s in services if s.namespace == w.namespace
               and selects((s.doc.get("spec") or {}).get("selector") or {}, pod_labels(w))
               and any(resolve_port(c, p.get("targetPort", p.get("port"))) == r.port
                       for p in (s.doc.get("spec") or {}).get("ports") or [])]
    report.check(fronted, where, f"Service {', '.join(s.name for s in fronted)} selects it on "
                 f"port {r.port}", f"no Service selects the Redis pods on port {r.port}")

    # Counters and leases live at most a window: persisting them buys nothing but disk writes.
    settings = r.settings
    report.check(settings.get("save") == "" and settings.get("appendonly") == "no", where,
                 "persistence is off (save \"\", appendonly no)",
                 f"persistence is on (save {settings.get('save')!r}, appendonly "
                 f"{settings.get('appendonly')!r}): give --save \"\" --appendonly no (counters "
                 "and leases need no disk)")
    policy = settings.get("maxmemory-policy", "noeviction")
    report.check(policy != "noeviction", where, f"maxmemory-policy {policy}",
                 "maxmemory-policy is noeviction: a full Redis would refuse the workers' scripts; "
                 "use allkeys-lru")
    maxmemory = memory_bytes(settings.get("maxmemory"), REDIS_UNITS)
    limit = ((c.get("resources") or {}).get("limits") or {}).get("memory")
    limit_bytes = memory_bytes(limit, QUANTITY_UNITS)
    report.check(bool(maxmemory) and bool(limit_bytes) and maxmemory < limit_bytes, where,
                 f"maxmemory {settings.get('maxmemory')} is below the memory limit {limit}",
                 f"maxmemory {settings.get('maxmemory')!r} must be set and below "
                 f"resources.limits.memory {limit!r}: else the kernel kills Redis before it "
                 "evicts")

    # The password: asked for, from a Secret the example shows, never written in the manifest.
    by_config_file = any(secret_file(w, c, word) for word in r.words if word.startswith("/"))
    report.check("requirepass" in settings or by_config_file, where, "requires a password",
                 "no requirepass: any pod that reaches Redis could read and reset the counters")
    report.check(bool(r.password_secrets) or by_config_file, where,
                 "the password comes from Secret "
                 f"{', '.join(sorted(str(s) for s, _ in r.password_secrets))}",
                 "the password does not come from a Secret (an env secretKeyRef or a file on a "
                 "Secret volume that the command reads)")
    for name, key in sorted(r.password_secrets, key=str):
        report.check(key in example_keys(secrets.get((w.namespace, name))), where,
                     f"Secret {name} key {key} has an example",
                     f"the password is Secret {name!r} key {key!r}, which secrets.example.yaml "
                     "does not show")
    for place, what in literal_passwords(c):
        report.fail(where, f"a literal password in the {place} ({what}): take it from a Secret")

    # Only the workers may reach it.
    policies = ingress_policies(by_kind.get("NetworkPolicy", []), w)
    report.check(policies, where, f"NetworkPolicy {', '.join(p.name for p in policies)} "
                 "limits who reaches it",
                 "no NetworkPolicy selects the Redis pods: every pod in the cluster could reach "
                 "it; admit only the workers")
    worker_labels = [pod_labels(ww) for ww, _ in workers]
    for p in policies:
        for rule in (p.doc.get("spec") or {}).get("ingress") or []:
            peers = rule.get("from") or []
            strangers = [peer for peer in peers
                         if "podSelector" not in peer or "namespaceSelector" in peer
                         or not any(label_selector_matches(peer["podSelector"], labels)
                                    for labels in worker_labels)]
            report.check(peers and not strangers, p.where(rel), "admits only the workers",
                         f"admits {strangers or 'every pod'}, not only the workers' pods")


def check_redis_url(url, report, where):
    """--redis: redis:// or rediss://, HOST:PORT, no password; plaintext only to loopback or a
    Service in the cluster. Returns (host, port, tls), or None if it cannot be read."""
    parts = urllib.parse.urlsplit(url or "")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not report.check(parts.scheme in ("redis", "rediss") and parts.hostname and port, where,
                        f"--redis {url} is a Redis URL",
                        f"--redis {url!r} is not redis://[USER@]HOST:PORT[/DATABASE] (or "
                        "rediss://)"):
        return None
    report.check(parts.password is None, where, "--redis holds no password",
                 "--redis URL holds a password: give it in --redis-password-file (from a Secret)")
    host, tls = parts.hostname, parts.scheme == "rediss"
    local = host in LOOPBACK_HOSTS or SERVICE_HOST.match(host) is not None
    how = "over TLS" if tls else "is loopback or a Service in the cluster"
    report.check(tls or local, where, f"--redis {host} {how}",
                 f"--redis {host} in plaintext: the password would cross the network readable; "
                 "use rediss:// (or a Service in the cluster, NAME.NAMESPACE.svc)")
    return host, port, tls


def check_worker_redis(w, c, services, redises, by_kind, secrets, report, rel):
    """The worker's --redis flags against the Redis they name."""
    where = w.where(rel)
    flags = parse_flags(container_argv_flags(c))
    if "--redis" not in flags:
        return
    target = check_redis_url(flags["--redis"], report, where)
    password = flags.get("--redis-password-file")
    password_secret = secret_file(w, c, password) if password else None
    check_on_secret_volumes(w, c, flags, ("--redis-password-file", "--redis-ca-file"), report,
                            where)
    if password_secret:
        name, key = password_secret
        report.check(key in example_keys(secrets.get((w.namespace, name))), where,
                     f"--redis-password-file is Secret {name} key {key}",
                     f"--redis-password-file {password} is Secret {name!r} key {key!r}, which "
                     "secrets.example.yaml does not show")
    if target is None:
        return
    host, port, tls = target
    if "--redis-ca-file" in flags:
        report.check(tls, where, "--redis-ca-file with rediss://",
                     "--redis-ca-file needs a rediss:// (TLS) --redis URL")
    if not SERVICE_HOST.match(host):
        return
    # A Redis in the cluster: its Service, its pods, its password, its NetworkPolicy.
    found = check_service_address("--redis", host, port, services, [r.w for r in redises],
                                  "the Redis pods", report, where)
    if found is None:
        return
    svc, entry = found
    selector = (svc.doc.get("spec") or {}).get("selector") or {}
    for r in redises:
        if r.w.namespace != svc.namespace or not selects(selector, pod_labels(r.w)):
            continue
        rwhere = f"{where} -> {r.w.kind}/{r.w.name}"
        target_port = resolve_port(r.c, entry.get("targetPort", entry.get("port")))
        report.check(target_port == r.port, rwhere,
                     f"Service port {port} reaches Redis's port {r.port}",
                     f"Service port {port} -> targetPort {entry.get('targetPort')!r}, not the port "
                     f"Redis listens on ({r.port})")
        if r.password_secrets:
            asked = ", ".join(f"{s}/{k}" for s, k in sorted(r.password_secrets, key=str))
            given = f"--redis-password-file {password!r} is not" if password \
                else "no --redis-password-file, but Redis asks for a password:"
            report.check(password_secret in r.password_secrets, rwhere,
                         f"--redis-password-file is the password Redis asks for ({asked})",
                         f"{given} the password Redis asks for (Secret {asked})")
        port_name = next((p.get("name") for p in r.c.get("ports") or []
                          if p.get("containerPort") == r.port), None)
        for p in ingress_policies(by_kind.get("NetworkPolicy", []), r.w):
            report.check(admits(p, pod_labels(w), r.port, port_name), rwhere,
                         f"NetworkPolicy {p.name} admits the workers",
                         f"NetworkPolicy {p.name} does not admit the workers (pods "
                         f"{pod_labels(w)}) to Redis on port {r.port}")


# ---- systemd ----------------------------------------------------------------------------------

def read_unit(path):
    """A unit file -> {section: [(key, value), ...]}, with continuation lines joined."""
    sections, current, pending = {}, None, ""
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            line = raw.rstrip("\n")
            if pending:
                if line.lstrip().startswith(("#", ";")):
                    continue
                line = pending + " " + line.strip()
                pending = ""
            if line.endswith("\\"):
                pending = line[:-1].rstrip()
                continue
            stripped = line.strip()
            if not stripped or stripped.startswith(("#", ";")):
                continue
            if stripped.startswith("[") and stripped.endswith("]"):
                current = stripped[1:-1]
                sections.setdefault(current, [])
                continue
            key, _, value = stripped.partition("=")
            sections.setdefault(current, []).append((key.strip(), value.strip()))
    return sections


def read_env_file(path, commented=False):
    """KEY=value settings; with `commented`, instead the ones shown commented out (#KEY=value),
    as a list, for the optional settings an example offers."""
    env, offered = {}, []
    if not os.path.exists(path):
        return offered if commented else env
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            m = re.match(r"#([A-Z][A-Z0-9_]*)=(.*)$", line)
            if m:
                offered.append((m.group(1), " ".join(shlex.split(m.group(2)))))
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, _, value = line.partition("=")
            words = shlex.split(value)
            env[key.strip()] = " ".join(words)
    return offered if commented else env


def expand_exec(command, env):
    """ExecStart -> argv: specifiers replaced by samples, ${VAR} one word, $VAR split into words."""
    command = command.lstrip("-@+!:")
    samples = {"%i": "edge", "%I": "edge", "%S": "/var/lib", "%d": "/run/credentials/unit",
               "%H": "host", "%%": "%", "%n": "unit.service", "%t": "/run"}
    for k, v in samples.items():
        command = command.replace(k, v)
    argv, undefined = [], []
    for word in shlex.split(command):
        m = re.fullmatch(r"\$\{(\w+)\}|\$(\w+)", word)
        if m:
            var = m.group(1) or m.group(2)
            if var not in env:
                undefined.append(var)
                continue
            argv.extend([env[var]] if m.group(1) else env[var].split())
        else:
            argv.append(re.sub(r"\$\{(\w+)\}", lambda x: env.get(x.group(1), ""), word))
    return argv, undefined


def check_systemd(systemd_dir, programs, report, rel):
    units = sorted(f for f in os.listdir(systemd_dir) if f.endswith(".service"))
    report.check(bool(units), rel(systemd_dir), f"{len(units)} units", "no .service units")
    for unit in units:
        path = os.path.join(systemd_dir, unit)
        where = rel(path)
        sections = read_unit(path)
        with open(path, encoding="utf-8") as fh:
            unit_text = fh.read()
        service = sections.get("Service", [])
        values = {}
        for k, v in service:
            values.setdefault(k, []).append(v)
        one = lambda k: (values.get(k) or [None])[-1]  # noqa: E731

        env = {}
        for assignment in values.get("Environment", []):
            for word in shlex.split(assignment):
                k, _, v = word.partition("=")
                env[k] = v
        stem = re.sub(r"^apim-|@?\.service$", "", unit)
        example = os.path.join(systemd_dir, f"{stem}.env.example")
        example_env = read_env_file(example)
        if values.get("EnvironmentFile"):
            report.check(os.path.exists(example), where,
                         f"{os.path.basename(example)} shows its settings",
                         f"reads an EnvironmentFile but {rel(example)} does not exist")
        env_all = {**env, **example_env}

        exec_start = values.get("ExecStart", [])
        if not report.check(len(exec_start) == 1, where, "one ExecStart",
                            f"{len(exec_start)} ExecStart lines"):
            continue
        argv, undefined = expand_exec(exec_start[0], env_all)
        report.check(not undefined, where, "every variable in ExecStart is set",
                     f"ExecStart uses {', '.join(undefined)}, set neither by Environment= nor in "
                     f"{os.path.basename(example)}")
        prog = os.path.basename(argv[0]) if argv else None
        program = programs.get(prog)
        if not report.check(program is not None, where, f"runs {prog}",
                            f"ExecStart runs {prog!r}: not one of {', '.join(PROGRAMS)}"):
            continue
        for arg in argv[1:]:
            if arg.startswith("--"):
                name = arg.split("=", 1)[0]
                report.check(name in program.flags, where, f"{name} is a flag of {prog}",
                             f"{name} is not a flag of {prog} (see `{prog} --help`)")
        flags = parse_flags(argv[1:])

        report.check(one("KillSignal") == "SIGTERM", where, "KillSignal=SIGTERM",
                     f"KillSignal={one('KillSignal')}, expected SIGTERM (it drains)")
        report.check(one("Restart") == "on-failure", where, "Restart=on-failure",
                     f"Restart={one('Restart')}, expected on-failure")
        report.check(one("NoNewPrivileges") == "yes", where, "NoNewPrivileges=yes",
                     "set NoNewPrivileges=yes")
        report.check(one("ProtectSystem") == "strict", where, "ProtectSystem=strict",
                     f"ProtectSystem={one('ProtectSystem')}, expected strict")
        report.check(one("DynamicUser") == "yes" or bool(one("User")), where,
                     "runs as its own user",
                     "set DynamicUser=yes or User=")
        state = one("StateDirectory")
        report.check(bool(state), where, f"StateDirectory={state}", "no StateDirectory=")
        nofile = one("LimitNOFILE") or "0"
        report.check(nofile.isdigit() and int(nofile) >= 65536, where, f"LimitNOFILE={nofile}",
                     f"LimitNOFILE={nofile}: streams hold descriptors, set at least 65536")
        if "--drain-timeout" in program.flags:
            # The drain timeout in force: the flag (with the unit's default for its variable), or
            # the program's default; an environment file may raise it.
            drains = [float(flags.get("--drain-timeout") or program.defaults["--drain-timeout"])]
            drains += [float(v) for k, v in example_env.items() if "DRAIN" in k]
            stop = seconds(one("TimeoutStopSec") or "90")
            report.check(stop is not None and stop > max(drains), where,
                         f"TimeoutStopSec {stop:g} > drain timeout {max(drains):g}",
                         f"TimeoutStopSec {one('TimeoutStopSec')} is not above the drain timeout "
                         f"{max(drains):g} s (the unit's default or {os.path.basename(example)}): "
                         "systemd would SIGKILL streams mid-drain")
        # Tokens cross the network between workers and the control plane: over TLS, with the
        # files handed over by systemd (LoadCredential), since the service's user is dynamic.
        credentials = {v.split(":", 1)[0] for v in values.get("LoadCredential", [])}
        tls_flags = ("--tls-cert-file", "--tls-key-file") if prog == "apim-controlplane" \
            else ("--ca-file",)
        report.check(all(f in flags for f in tls_flags) and "--allow-insecure" not in flags,
                     where, f"uses TLS ({', '.join(tls_flags)})",
                     f"gRPC in plaintext: give {' and '.join(tls_flags)}")
        for flag in tls_flags:
            path = flags.get(flag, "")
            if path.startswith("/run/credentials/unit/"):
                name = path.rsplit("/", 1)[1]
                report.check(name in credentials, where, f"{flag} comes from LoadCredential {name}",
                             f"{flag} {path}: no LoadCredential={name}:...")
        for flag in ("--db", "--snapshot-cache"):
            if flag in flags and state:
                state_dir = "/var/lib/" + state.split()[0].replace("%i", "edge")
                report.check(flags[flag].startswith(state_dir + "/"), where,
                             f"{flag} is in the StateDirectory",
                             f"{flag} {flags[flag]} is outside StateDirectory {state_dir}: "
                             "ProtectSystem=strict makes it read-only")
        # The extra flags, in force or offered commented out.
        for k, v in list(example_env.items()) + read_env_file(example, commented=True):
            if not k.endswith("_OPTS"):
                continue
            for word in v.split():
                if word.startswith("--"):
                    name = word.split("=", 1)[0]
                    report.check(name in program.flags, rel(example),
                                 f"{name} is a flag of {prog}",
                                 f"{k} passes {name}, not a flag of {prog}")
            opts = parse_flags(v.split())
            if "--redis" in opts:
                check_redis_url(opts["--redis"], report, rel(example))
            # DynamicUser cannot read root-only /etc/apim: secrets come as credentials.
            password = opts.get("--redis-password-file")
            if password:
                credential = re.match(r"/run/credentials/[^/]+/([\w.-]+)$", password)
                report.check(credential and re.search(
                    rf"LoadCredential={re.escape(credential.group(1))}:", unit_text),
                    rel(example), f"--redis-password-file {password} is a credential of {unit}",
                    f"--redis-password-file {password!r} is not a credential that {unit} loads "
                    "(/run/credentials/UNIT/NAME with LoadCredential=NAME:..., commented or not)")

    verify_units(systemd_dir, units, programs, report, rel)


def verify_units(systemd_dir, units, programs, report, rel):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        report.note("systemd-analyze not found: `systemd-analyze verify` skipped")
        return
    with tempfile.TemporaryDirectory(prefix="apim-units-") as tmp:
        texts = {}
        for unit in units:
            with open(os.path.join(systemd_dir, unit), encoding="utf-8") as fh:
                text = fh.read()
            # verify insists that the executable exists: point it at the binaries under test.
            for name, program in programs.items():
                text = text.replace(f"/usr/local/bin/{name}", os.path.abspath(program.path))
            with open(os.path.join(tmp, unit), "w", encoding="utf-8") as fh:
                fh.write(text)
            texts[unit] = text
        for unit in units:
            out = run_tool([analyze, "verify", os.path.join(tmp, unit)], texts[unit],
                           env={**os.environ, "SYSTEMD_LOG_COLOR": "0"})
            stem = unit.split("@")[0].replace(".service", "")
            ours = [line for line in (out.stdout + out.stderr).splitlines() if stem in line]
            report.check(out.returncode == 0 and not ours, rel(os.path.join(systemd_dir, unit)),
                         "`systemd-analyze verify` is clean",
                         "`systemd-analyze verify` reports: "
                         + ("; ".join(ours) or f"exit {out.returncode}: {out.stderr.strip()}"))


# ---- container --------------------------------------------------------------------------------

def read_containerfile(path):
    """-> list of stages, each a list of (INSTRUCTION, arguments)."""
    stages, pending = [], ""
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            line = raw.rstrip("\n")
            if line.strip().startswith("#"):
                continue
            line = pending + line
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            if not line.strip():
                continue
            instr, _, args = line.strip().partition(" ")
            instr = instr.upper()
            if instr == "FROM":
                stages.append([])
            if stages:
                stages[-1].append((instr, args.strip()))
    return stages


_PACKAGES_CACHE = {}


def dpkg_owners(paths):
    """{path: Debian package} for the paths dpkg knows, in one dpkg -S call."""
    if not paths:
        return {}
    out = subprocess.run(["dpkg", "-S", *sorted(paths)], capture_output=True, text=True, timeout=60)
    owners = {}
    for line in out.stdout.splitlines():
        package, _, path = line.partition(": ")
        if path in paths:
            owners[path] = package.split(",")[0].split(":")[0].strip()
    return owners


def runtime_packages_needed(programs):
    """Debian packages owning the shared libraries the binaries load (ldd, then dpkg -S)."""
    key = tuple(sorted(p.path for p in programs.values()))
    if key in _PACKAGES_CACHE:
        return _PACKAGES_CACHE[key]
    libs = set()
    for program in programs.values():
        out = subprocess.run(["ldd", program.path], capture_output=True, text=True, timeout=20)
        libs |= set(re.findall(r"=>\s+(/\S+)", out.stdout))
    # Debian 12 merges /lib into /usr/lib: dpkg knows a library under one of its two names.
    real = {lib: os.path.realpath(lib) for lib in libs}
    owners = dpkg_owners(set(real.values()) | libs)
    needed, unowned = {}, []
    for lib in sorted(libs):
        owner = owners.get(real[lib]) or owners.get(lib)
        if owner is None:
            unowned.append(lib)
        else:
            needed.setdefault(owner, set()).add(os.path.basename(lib))
    _PACKAGES_CACHE[key] = (needed, unowned)
    return needed, unowned


def check_container(repo, container_dir, programs, k8s_manifests, report, rel):
    path = os.path.join(container_dir, "Containerfile")
    where = rel(path)
    if not report.check(os.path.exists(path), where, "exists", "missing"):
        return
    stages = read_containerfile(path)
    if not report.check(len(stages) >= 2, where, f"{len(stages)} stages",
                        "expected a multi-stage build (builder and runtime)"):
        return
    base = stages[0][0][1].split()[0]
    final = stages[-1]
    report.check(base == "debian:12", where, f"builds on {base}",
                 f"builder is {base}, expected debian:12")
    report.check(final[0][1].split()[0] == "debian:12-slim", where, "runtime is debian:12-slim",
                 f"runtime is {final[0][1]}, expected debian:12-slim")
    build_text = "\n".join(a for _, a in stages[0])
    report.check("scripts/install-deps" in build_text, where, "builder runs scripts/install-deps",
                 "builder does not install the build dependencies with scripts/install-deps")

    # Every folder the top-level CMakeLists.txt adds must be copied into the builder.
    copied = set()
    for instr, args in stages[0]:
        if instr == "COPY":
            for src in args.split()[:-1]:
                if not src.startswith("--"):
                    copied.add(src.rstrip("/"))
    with open(os.path.join(repo, "CMakeLists.txt"), encoding="utf-8") as fh:
        subdirs = re.findall(r"add_subdirectory\(\s*([\w./-]+)", fh.read())
    for d in subdirs:
        report.check(d in copied, where, f"copies {d}/",
                     f"does not COPY {d}/, which CMakeLists.txt adds")

    users = [a for i, a in final if i == "USER"]
    user = users[-1].split(":")[0] if users else "root"
    report.check(user not in ("root", "0"), where, f"runtime runs as user {user}",
                 "runtime stage has no non-root USER")
    exposed = set()
    for i, a in final:
        if i == "EXPOSE":
            exposed |= {int(p.split("/")[0]) for p in a.split()}
    want_ports = {8080, 9901, 50051}
    copies_to_bin = any(i == "COPY" and "/usr/local/bin" in a for i, a in final)
    for m in k8s_manifests:
        if m.kind not in WORKLOAD_KINDS:
            continue
        pod_security = pod_spec(m).get("securityContext") or {}
        for c in pod_spec(m).get("containers") or []:
            if is_redis(c):
                continue  # Its own image, its own user.
            want_ports |= {p.get("containerPort") for p in c.get("ports") or []}
            run_as = (c.get("securityContext") or {}).get("runAsUser",
                                                         pod_security.get("runAsUser"))
            if user.isdigit() and run_as is not None:
                report.check(int(user) == run_as, where,
                             f"USER {user} matches {m.name}'s runAsUser",
                             f"USER {user} differs from {m.kind}/{m.name} runAsUser {run_as}")
            command = (c.get("command") or [None])[0]
            if command and command.startswith("/usr/local/bin/"):
                name = os.path.basename(command)
                built = re.search(rf"/out/{re.escape(name)}\b", build_text) is not None
                report.check(built and copies_to_bin, where,
                             f"installs {command} (used by {m.name})",
                             f"{m.kind}/{m.name} runs {command}, which the image does not install")
    report.check(want_ports <= exposed, where, f"EXPOSE {sorted(exposed)}",
                 f"EXPOSE {sorted(exposed)} lacks {sorted(want_ports - exposed)}")

    installed = set()
    for i, a in final:
        if i == "RUN" and "apt-get install" in a:
            for word in a.split("apt-get install", 1)[1].split("&&")[0].split():
                if not word.startswith("-"):
                    installed.add(word)
    # Workers verify https:// backends and rediss:// servers against the system's CA bundle
    # unless given a CA file; debian:12-slim has none.
    report.check("ca-certificates" in installed, where, "runtime installs ca-certificates",
                 "runtime stage does not install ca-certificates: TLS to backends and Redis "
                 "would trust no CA unless given a CA file")
    if not (shutil.which("ldd") and shutil.which("dpkg")):
        report.note("ldd or dpkg not found: runtime library check skipped")
        return
    needed, unowned = runtime_packages_needed(programs)
    report.check(not unowned, where, "every linked library comes from a Debian package",
                 f"libraries from no Debian package (the image would lack them): {unowned}")
    for package, libs in sorted(needed.items()):
        if package in SLIM_BASE_PACKAGES:
            continue
        report.check(package in installed, where, f"runtime installs {package}",
                     f"runtime stage does not install {package} ({', '.join(sorted(libs))})")


# ---- driver -----------------------------------------------------------------------------------

def validate(repo, programs, quiet=False, verbose=False):
    report = Report(quiet, verbose)
    deploy = os.path.join(repo, "deploy")
    rel = lambda p: os.path.relpath(p, repo)  # noqa: E731
    for sub in ("kubernetes", "systemd", "container"):
        report.check(os.path.isdir(os.path.join(deploy, sub)), "deploy", f"{sub}/ exists",
                     f"{sub}/ is missing")
    report.check(os.path.exists(os.path.join(deploy, "README.md")), "deploy", "README.md exists",
                 "README.md is missing")
    manifests = load_yaml_files(deploy, report, rel)
    k8s_dir = os.path.join(deploy, "kubernetes") + os.sep
    check_kubernetes(manifests, programs, report, rel, k8s_dir)
    if os.path.isdir(os.path.join(deploy, "systemd")):
        check_systemd(os.path.join(deploy, "systemd"), programs, report, rel)
    check_container(repo, os.path.join(deploy, "container"), programs,
                    [m for m in manifests if m.path.startswith(k8s_dir)], report, rel)
    return report


# Known mistakes, each a (file under deploy/, text, replacement, what the report must say).
MUTATIONS = [
    ("kubernetes/gateway.yaml", '- --drain-timeout\n            - "20"',
     '- --drain-timeout\n            - "60"', "terminationGracePeriodSeconds"),
    ("kubernetes/gateway.yaml", "  replicas: 2\n", "  replicas: 1\n", "replicas is 1"),
    ("kubernetes/gateway.yaml", "path: /readyz", "path: /ready", "not an admin endpoint"),
    ("kubernetes/gateway.yaml", "- --admin-listen\n", "- --admin-address\n",
     "--admin-address is not a flag of apim-gateway"),
    ("kubernetes/gateway.yaml", "- 0.0.0.0:9901", "- 127.0.0.1:9901", "is loopback"),
    ("kubernetes/gateway.yaml", "targetPort: http", "targetPort: web", "targetPort 'web'"),
    ("kubernetes/gateway.yaml", "containerPort: 9901", "containerPort: 9902",
     "is not a declared containerPort"),
    ("kubernetes/gateway.yaml", "kind: Deployment\n    name: apim-gateway",
     "kind: Deployment\n    name: apim-gatewy", "HorizontalPodAutoscalers target"),
    ("kubernetes/gateway.yaml", "minAvailable: 1\n  selector:\n    matchLabels:\n"
     "      app.kubernetes.io/name: apim-gateway",
     "minAvailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: gateway",
     "PodDisruptionBudgets select"),
    ("kubernetes/gateway.yaml", "- name: POD_NAME", "- name: POD_NAM", "uses $(POD_NAME)"),
    ("kubernetes/gateway.yaml", "apim-controlplane.apim.svc:50051", "apim-cp.apim.svc:50051",
     "Service apim/apim-cp"),
    ("kubernetes/gateway.yaml", "terminationGracePeriodSeconds: 45",
     "terminationGracePeriodSeconds: 20", "terminationGracePeriodSeconds 20"),
    ("kubernetes/controlplane.yaml", "tcpSocket:\n              port: grpc",
     "tcpSocket:\n              port: 50052", "port 50052 is not a declared containerPort"),
    ("kubernetes/controlplane.yaml", "  replicas: 1\n", "  replicas: 2\n", "single-writer"),
    ("kubernetes/controlplane.yaml", "mountPath: /var/lib/apim\n", "mountPath: /var/lib/apim2\n",
     "read-only root filesystem"),
    ("kubernetes/controlplane.yaml", "  name: apim-controlplane-headless\n",
     "  name: apim-controlplane-headles\n", "is not a headless Service"),
    ("kubernetes/namespace.yaml", "  name: apim\n", "  nam: apim\n", "missing metadata.name"),
    ("kubernetes/controlplane.yaml", "            - --tls-cert-file\n            - /var/run/apim/tls/tls.crt\n"
     "            - --tls-key-file\n            - /var/run/apim/tls/tls.key\n", "", "in plaintext"),
    ("kubernetes/gateway.yaml", "            - --ca-file\n            - /var/run/apim/controlplane-ca/ca.crt\n",
     "", "in plaintext"),
    ("kubernetes/gateway.yaml", "mountPath: /var/run/apim/controlplane-ca\n",
     "mountPath: /var/run/apim/controlplane-ca2\n", "--ca-file /var/run/apim/controlplane-ca/ca.crt is not on a Secret"),
    ("kubernetes/namespace.yaml", "kind: Namespace\n", "kind: Namespace\n  bad: [\n",
     "does not parse as YAML"),
    ("systemd/apim-gateway@.service", "--drain-timeout ${", "--drain-timout ${",
     "--drain-timout is not a flag"),
    ("systemd/apim-gateway@.service", "TimeoutStopSec=45", "TimeoutStopSec=10",
     "is not above the drain timeout"),
    ("systemd/apim-controlplane.service", "KillSignal=SIGTERM", "KillSignal=SIGKILL",
     "expected SIGTERM"),
    ("systemd/apim-controlplane.service", "--db %S/apim-controlplane/", "--db /srv/",
     "outside StateDirectory"),
    ("systemd/gateway.env.example", "--threads 4", "--thread 4", "--thread, not a flag"),
    ("systemd/apim-gateway@.service", "    --ca-file %d/controlplane-ca \\\n", "", "in plaintext"),
    ("systemd/apim-controlplane.service", "LoadCredential=tls-key:", "LoadCredential=key:",
     "no LoadCredential=tls-key"),
    ("container/Containerfile", "COPY dataplane /src/dataplane\n", "", "does not COPY dataplane/"),
    ("container/Containerfile", "USER 10001:10001", "USER root", "no non-root USER"),
    ("container/Containerfile", "      ca-certificates \\\n", "",
     "does not install ca-certificates"),
    # Redis, the workers' shared counters.
    ("kubernetes/redis.yaml", "image: redis:7", "image: bitnami/redis:7", "nor the official redis"),
    ("kubernetes/redis.yaml", "            requests:\n              cpu: 100m\n"
     "              memory: 256Mi\n", "", "apim-redis container redis: no resources.requests"),
    ("kubernetes/redis.yaml", "runAsUser: 999", "runAsUser: 0",
     "apim-redis container redis: securityContext must set runAsNonRoot"),
    ("kubernetes/redis.yaml", "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true",
     "apim-redis container redis: set allowPrivilegeEscalation: false"),
    ("kubernetes/redis.yaml", "          readinessProbe:", "          startupProbe:",
     "no readinessProbe"),
    ("kubernetes/redis.yaml", "  replicas: 1\n", "  replicas: 2\n", "run exactly 1"),
    ("kubernetes/redis.yaml", "type: Recreate", "type: RollingUpdate", "use Recreate"),
    ("kubernetes/redis.yaml", "--appendonly no", "--appendonly yes", "persistence is on"),
    ("kubernetes/redis.yaml", '--save "" ', "", "persistence is on"),
    ("kubernetes/redis.yaml", "--maxmemory-policy allkeys-lru", "--maxmemory-policy noeviction",
     "maxmemory-policy is noeviction"),
    ("kubernetes/redis.yaml", "--maxmemory 192mb", "--maxmemory 1gb", "below resources.limits"),
    ("kubernetes/redis.yaml", "'requirepass %s\\n' \"$(cat /var/run/apim/redis/password)\"",
     "'requirepass hunter2hunter2\\n'", "a literal password"),
    ("kubernetes/redis.yaml", "      port: 6379\n      targetPort: redis",
     "      port: 6379\n      targetPort: 6380", "no Service selects the Redis pods on port 6379"),
    ("kubernetes/redis.yaml", "              app.kubernetes.io/name: apim-gateway",
     "              app.kubernetes.io/name: apim-controlplane", "does not admit the workers"),
    ("kubernetes/redis.yaml", "kind: NetworkPolicy", "kind: NetworkPolicyX",
     "no NetworkPolicy selects the Redis pods"),
    ("kubernetes/secrets.example.yaml", "  password: CHANGE-ME", "  passwd: CHANGE-ME",
     "Secret 'apim-redis' key 'password', which secrets.example.yaml does not show"),
    ("kubernetes/gateway.yaml", "redis://apim-redis.apim.svc:6379",
     "redis://apim-cache.apim.svc:6379", "--redis names Service apim/apim-cache"),
    ("kubernetes/gateway.yaml", "redis://apim-redis.apim.svc:6379",
     "redis://:hunter2@apim-redis.apim.svc:6379", "holds a password"),
    ("kubernetes/gateway.yaml", "redis://apim-redis.apim.svc:6379",
     "redis://redis.example.com:6379", "in plaintext: the password would cross the network"),
    ("kubernetes/gateway.yaml", "mountPath: /var/run/apim/redis\n",
     "mountPath: /var/run/apim/redis-password\n",
     "--redis-password-file /var/run/apim/redis/password is not on a Secret volume"),
    ("kubernetes/gateway.yaml", "secretName: apim-redis", "secretName: apim-gateway-token",
     "is not the password Redis asks for"),
    ("systemd/gateway.env.example", "--redis rediss://", "--redis redis://", "in plaintext"),
    ("systemd/gateway.env.example", "--redis-password-file /run/credentials/",
     "--redis-password-file /etc/apim/", "is not a credential that"),
]
# Only meaningful where the tool that catches it is installed.
TOOL_MUTATIONS = [
    ("systemd-analyze", "systemd/apim-controlplane.service", "Restart=on-failure\n",
     "Restart=on-failure\nRestartSecs=2\n", "systemd-analyze verify"),
    ("dpkg", "container/Containerfile", "      libre2-9 \\\n", "", "does not install libre2-9"),
]


def self_test(repo, programs):
    """Each known mistake, applied alone to a copy of deploy/, must be reported."""
    mutations = list(MUTATIONS)
    for tool, *rest in TOOL_MUTATIONS:
        if shutil.which(tool):
            mutations.append(tuple(rest))
        else:
            print(f"note  {tool} not found: its mutation skipped")
    failures = 0
    with tempfile.TemporaryDirectory(prefix="apim-deploy-selftest-") as tmp:
        shutil.copy(os.path.join(repo, "CMakeLists.txt"), tmp)
        for file, old, new, expect in mutations:
            shutil.rmtree(os.path.join(tmp, "deploy"), ignore_errors=True)
            shutil.copytree(os.path.join(repo, "deploy"), os.path.join(tmp, "deploy"))
            target = os.path.join(tmp, "deploy", file)
            with open(target, encoding="utf-8") as fh:
                text = fh.read()
            label = f"{file}: {old.strip()!r} -> {new.strip()!r}"
            if old not in text:
                print(f"FAIL  mutation no longer applies (update MUTATIONS): {label}")
                failures += 1
                continue
            with open(target, "w", encoding="utf-8") as fh:
                fh.write(text.replace(old, new, 1))
            report = validate(tmp, programs, quiet=True)
            caught = [p for p in report.problems if expect in p]
            if caught:
                print(f"ok    caught {label}\n        -> {caught[0]}")
            else:
                failures += 1
                print(f"FAIL  not caught: {label} (expected a problem containing {expect!r}; "
                      f"got {report.problems or 'none'})")
    print(f"validate_manifests --self-test: {len(mutations) - failures} of {len(mutations)} "
          "mistakes caught")
    return 1 if failures else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", required=True, help="repository root (holds deploy/)")
    parser.add_argument("--gateway", required=True, help="apim-gateway binary")
    parser.add_argument("--controlplane", required=True, help="apim-controlplane binary")
    parser.add_argument("--self-test", action="store_true",
                        help="check that known mistakes in a copy of deploy/ are reported")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every passed check")
    args = parser.parse_args()
    try:
        programs = {"apim-gateway": Program("apim-gateway", args.gateway),
                    "apim-controlplane": Program("apim-controlplane", args.controlplane)}
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        print(f"validate_manifests: cannot read the programs' flags: {e}", file=sys.stderr)
        return 2
    if args.self_test:
        clean = validate(args.repo, programs, quiet=True)
        if clean.problems:
            print("FAIL  deploy/ itself has problems; fix them first:")
            for p in clean.problems:
                print(f"        {p}")
            return 1
        return self_test(args.repo, programs)
    report = validate(args.repo, programs, verbose=args.verbose)
    if report.problems:
        print(f"validate_manifests: {len(report.problems)} problem(s), "
              f"{report.passed} checks passed:")
        for p in report.problems:
            print(f"  - {p}")
        return 1
    print(f"validate_manifests: all {report.passed} checks passed (deploy/kubernetes, "
          "deploy/systemd, "
          "deploy/container)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
