#!/usr/bin/env python3
"""Checks deploy/kubernetes/*.yaml and deploy/container/Dockerfile against the built daemons.

- Every YAML document parses, and each Kubernetes object has apiVersion, kind and a name.
- Every container that runs dscheduler or dworker (or a program as `--distrib-worker`) names
  only flags that daemon's --help lists, gives a value to each flag that takes one, and
  refers only to environment variables it defines ($(NAME)).
- A worker's scheduler address is tcp://SERVICE:PORT of a Service in the manifests whose
  selector matches the scheduler pods and whose port leads to the scheduler's --port.
- A daemon listening off loopback has a token (--auth-token-file on a mounted Secret, or
  DISTRIB_AUTH_TOKEN from a Secret) or TLS files; a worker's --memory-limit is an absolute
  size no larger than its container's memory limit.
- The Dockerfile's runtime stage runs a program the CMake install rules install, and
  installs the Debian package of every shared library the built daemons, libdistrib and its
  modules need (when dpkg-query is there to say which package that is).

Prints one line per problem, naming the file and what is wrong, and exits 1 if there is any.
"""
import argparse
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))
DAEMONS = ("dscheduler", "dworker")
# Packages every debian:12-slim image has (essential, or needed by apt itself).
BASE_IMAGE_PACKAGES = {"libc6", "libstdc++6", "libgcc-s1"}


# --- the daemons' flags ------------------------------------------------------------------

def parse_help(text):
    """{flag: takes_value} from CLI11's --help: option lines start with two spaces and a dash."""
    flags = {}
    for line in text.splitlines():
        m = re.match(r"^  (-{1,2}[\w-]+(?:,-{1,2}[\w-]+)*)(\S*)(.*)$", line)
        if not m:
            continue
        names, rest = m.group(1).split(","), m.group(3)
        # One space after the names, then the value's type (TEXT, UINT:POSITIVE=2, FLOAT,
        # DURATION...): an option. A flag has none (or {false} for --x,--no-x pairs); its
        # description follows two spaces or more, or the next line.
        takes_value = re.match(r"^ [A-Z]", rest) is not None
        for name in names:
            if name.startswith("--"):
                flags[name] = takes_value
    return flags


def daemon_flags(binary):
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise SystemExit(f"{binary} --help exited with {out.returncode}: {out.stderr.strip()}")
    flags = parse_help(out.stdout)
    if "--help" not in flags or len(flags) < 5:
        raise SystemExit(f"could not read the flags from {binary} --help")
    return flags


def parse_command_line(argv, flags):
    """(options {flag: value or True}, positionals, problems) of a daemon's arguments."""
    options, positionals, problems = {}, [], []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if name not in flags:
                problems.append(f"flag {name} is not one the daemon accepts")
            elif flags[name]:
                if not eq:
                    if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                        problems.append(f"flag {name} wants a value")
                    else:
                        i += 1
                        value = argv[i]
                options[name] = value
            else:
                if eq:
                    problems.append(f"flag {name} takes no value (given {value!r})")
                options[name] = True
        elif arg.startswith("-") and len(arg) > 1:
            problems.append(f"short option {arg}: use the long flags")
        else:
            positionals.append(arg)
        i += 1
    return options, positionals, problems


# --- sizes -----------------------------------------------------------------------------

K8S_UNITS = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
             "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
# As distrib's parse_byte_size (Dask's table), case-insensitive.
DISTRIB_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9,
                 "t": 1e12, "tb": 1e12, "p": 1e15, "pb": 1e15, "ki": 2**10, "kib": 2**10,
                 "mi": 2**20, "mib": 2**20, "gi": 2**30, "gib": 2**30, "ti": 2**40, "tib": 2**40}


def k8s_quantity(text):
    m = re.fullmatch(r"([0-9.]+(?:[eE][0-9]+)?)([a-zA-Z]*)", str(text).strip())
    if not m or m.group(2) not in K8S_UNITS:
        return None
    return float(m.group(1)) * K8S_UNITS[m.group(2)]


def memory_limit_bytes(text):
    """Bytes of an absolute --memory-limit; None for auto, a fraction, 0/none or junk."""
    s = re.sub(r"\s", "", str(text)).lower()
    m = re.fullmatch(r"([0-9.]+(?:e[0-9]+)?)([a-z]*)", s)
    if not m or s in ("0", "none", "auto") or m.group(2) not in DISTRIB_UNITS:
        return None
    number = float(m.group(1))
    if not m.group(2) and number <= 1 and ("." in s or "e" in s):
        return None  # a fraction of the machine
    return number * DISTRIB_UNITS[m.group(2)] or None


# --- the manifests ---------------------------------------------------------------------

def load_documents(directory, problems):
    docs = []
    files = sorted(glob.glob(os.path.join(directory, "*.yaml")) + glob.glob(os.path.join(directory, "*.yml")))
    if not files:
        problems.append(f"{directory}: no *.yaml files")
    for path in files:
        name = os.path.basename(path)
        try:
            with open(path) as f:
                loaded = [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            problems.append(f"{name}: does not parse: {e}")
            continue
        for d in loaded:
            if not isinstance(d, dict) or "apiVersion" not in d or "kind" not in d:
                problems.append(f"{name}: a document without apiVersion and kind")
                continue
            if d["kind"] != "Kustomization" and not (d.get("metadata") or {}).get("name"):
                problems.append(f"{name}: a {d['kind']} without metadata.name")
                continue
            docs.append((name, d))
    return docs


def pod_spec(doc):
    kind = doc.get("kind")
    spec = doc.get("spec") or {}
    if kind == "Pod":
        return spec, (doc.get("metadata") or {}).get("labels") or {}
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        template = spec.get("template") or {}
        return template.get("spec") or {}, (template.get("metadata") or {}).get("labels") or {}
    return None, None


def daemon_of(argv):
    """('dscheduler' | 'dworker', its arguments), or (None, None) for another program."""
    if not argv:
        return None, None
    program = os.path.basename(str(argv[0]))
    if program in DAEMONS:
        return program, argv[1:]
    if "--distrib-worker" in argv:  # a program of one's own as a worker: dworker's arguments follow
        return "dworker", argv[argv.index("--distrib-worker") + 1:]
    return None, None


def check_container(where, container, pod, flags, problems):
    """Checks one container; returns (daemon, options, positionals) or None."""
    argv = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
    daemon, args = daemon_of(argv)
    if daemon is None:
        if any(d in a for a in argv for d in DAEMONS):
            problems.append(f"{where}: runs a daemon through another program ({shlex.join(argv)}); "
                            "make the daemon the command so that its flags can be checked and it gets SIGTERM")
        return None
    options, positionals, arg_problems = parse_command_line(args, flags[daemon])
    problems.extend(f"{where}: {daemon}: {p}" for p in arg_problems)

    env = {e.get("name"): e for e in container.get("env") or []}
    for a in args:
        for var in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", a):
            if var not in env:
                problems.append(f"{where}: {daemon}: $({var}) is not in the container's env")

    # Protected mode: off loopback, a token or TLS files.
    host = options.get("--host", "0.0.0.0")
    if host not in ("127.0.0.1", "localhost", "::1") and "--insecure" not in options:
        mounts = [m.get("mountPath", "") for m in container.get("volumeMounts") or []]
        secret_volumes = {v.get("name") for v in pod.get("volumes") or [] if "secret" in v}
        secret_mounts = [m.get("mountPath", "") for m in container.get("volumeMounts") or []
                         if m.get("name") in secret_volumes]
        token_file = options.get("--auth-token-file")
        token_env = env.get("DISTRIB_AUTH_TOKEN", {})
        if token_file:
            if not any(token_file.startswith(m.rstrip("/") + "/") for m in secret_mounts):
                problems.append(f"{where}: {daemon}: --auth-token-file {token_file} is not in a mounted Secret "
                                f"(mounts: {', '.join(mounts) or 'none'})")
        elif "secretKeyRef" in (token_env.get("valueFrom") or {}):
            pass
        elif not {"--tls-ca-file", "--tls-cert", "--tls-key"} <= options.keys():
            problems.append(f"{where}: {daemon}: listens on {host} with neither a token "
                            "(--auth-token-file, DISTRIB_AUTH_TOKEN from a Secret) nor TLS: protected mode refuses it")

    if daemon == "dworker":
        if len(positionals) != 1 and "--scheduler-file" not in options:
            problems.append(f"{where}: dworker: expected one scheduler address, got {positionals}")
        limit = options.get("--memory-limit", "auto")
        limit_bytes = memory_limit_bytes(limit)
        container_limit = k8s_quantity(((container.get("resources") or {}).get("limits") or {}).get("memory", ""))
        if limit_bytes is None:
            problems.append(f"{where}: dworker: --memory-limit {limit} is not an absolute size: in a container "
                            "auto and fractions read the node's memory, not the container's limit")
        elif container_limit is None:
            problems.append(f"{where}: dworker: no resources.limits.memory to keep --memory-limit {limit} under")
        elif limit_bytes > container_limit:
            problems.append(f"{where}: dworker: --memory-limit {limit} is more than the container's memory limit "
                            f"{container['resources']['limits']['memory']}")
    elif daemon == "dscheduler":
        dashboard = str(options.get("--dashboard-address", ":8787"))
        port = dashboard.rpartition(":")[2]
        for probe in ("readinessProbe", "livenessProbe"):
            get = (container.get(probe) or {}).get("httpGet")
            if get is None:
                continue
            probe_port = named_port(container, get.get("port"))
            if get.get("path") != "/health" or str(probe_port) != port:
                problems.append(f"{where}: dscheduler: {probe} asks {get.get('path')} on port {get.get('port')}; "
                                f"only /health on the dashboard port ({port}) answers without the token")
    return daemon, options, positionals


def named_port(container, port):
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return p.get("containerPort")
    return port


def labels_match(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_manifests(directory, flags, problems):
    docs = load_documents(directory, problems)
    schedulers, workers = [], []  # (where, options, positionals, labels, container)
    services = [(name, d) for name, d in docs if d["kind"] == "Service"]
    for name, d in docs:
        if d["kind"] == "Kustomization":
            for r in d.get("resources") or []:
                if not os.path.exists(os.path.join(directory, r)):
                    problems.append(f"{name}: resource {r} does not exist")
            continue
        pod, labels = pod_spec(d)
        if pod is None:
            continue
        for c in (pod.get("initContainers") or []) + (pod.get("containers") or []):
            where = f"{name}: {d['kind']} {d['metadata']['name']}, container {c.get('name')}"
            checked = check_container(where, c, pod, flags, problems)
            if checked:
                daemon, options, positionals = checked
                (schedulers if daemon == "dscheduler" else workers).append((where, options, positionals, labels, c))
    for where, options, positionals, _, _ in workers:
        if positionals:
            check_worker_address(where, positionals[0], services, schedulers, problems)
    return schedulers, workers


def check_worker_address(where, address, services, schedulers, problems):
    m = re.fullmatch(r"(?:tcp|tls)://([a-z0-9.-]+):(\d+)", address)
    if not m:
        problems.append(f"{where}: dworker: scheduler address {address} is not tcp://SERVICE:PORT (or tls://)")
        return
    host, port = m.group(1), int(m.group(2))
    service_name = host.split(".")[0]  # distrib-scheduler, or distrib-scheduler.NAMESPACE.svc...
    service = next((d for _, d in services if d["metadata"]["name"] == service_name), None)
    if service is None:
        problems.append(f"{where}: dworker: scheduler address {address} names no Service of the manifests "
                        f"(Services: {', '.join(d['metadata']['name'] for _, d in services) or 'none'})")
        return
    spec = service.get("spec") or {}
    targets = [s for s in schedulers if labels_match(spec.get("selector"), s[3])]
    if not targets:
        problems.append(f"{where}: dworker: Service {service_name} selects no scheduler pod")
        return
    service_port = next((p for p in spec.get("ports") or [] if p.get("port") == port), None)
    if service_port is None:
        problems.append(f"{where}: dworker: Service {service_name} has no port {port}")
        return
    for s_where, s_options, _, _, s_container in targets:
        target = named_port(s_container, service_port.get("targetPort", port))
        scheduler_port = str(s_options.get("--port", "8786"))
        if str(target) != scheduler_port:
            problems.append(f"{where}: dworker: {address} leads to port {target} of the scheduler, "
                            f"which listens on {scheduler_port} ({s_where})")


# --- the Dockerfile --------------------------------------------------------------------

def dockerfile_stages(path):
    """[(base, [(instruction, argument)])], continuation lines joined."""
    stages, logical = [], ""
    with open(path) as f:
        lines = f.read().splitlines()
    joined = []
    for line in lines:
        if not logical and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        logical += line.rstrip()
        if logical.endswith("\\"):
            logical = logical[:-1] + " "
            continue
        joined.append(logical.strip())
        logical = ""
    for line in joined:
        instruction, _, argument = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            stages.append((argument.split()[0], []))
        elif stages:
            stages[-1][1].append((instruction, argument.strip()))
    return stages


def installed_programs(source_dir):
    """Executables that install(TARGETS ... RUNTIME DESTINATION ...) in CMakeLists.txt installs."""
    executables = set()
    for cmake in glob.glob(os.path.join(source_dir, "**", "CMakeLists.txt"), recursive=True):
        if os.path.relpath(cmake, source_dir).split(os.sep)[0].startswith("build"):
            continue  # build trees
        with open(cmake) as f:
            executables.update(re.findall(r"add_executable\(\s*([\w-]+)", f.read()))
    with open(os.path.join(source_dir, "CMakeLists.txt")) as f:
        text = f.read()
    installed = set()
    for rule in re.findall(r"install\(\s*TARGETS\s+([^)]*)\)", text):
        words = rule.split()
        names = []
        for w in words:
            if w.isupper():
                break
            names.append(w)
        if "RUNTIME" in words:
            installed.update(n for n in names if n in executables)
    return installed


def needed_packages(binaries, problems):
    """{library: Debian package} of the shared libraries outside the build tree that the
    binaries load, or None if ldd or dpkg-query is missing."""
    if not shutil.which("ldd") or not shutil.which("dpkg-query"):
        return None
    libraries = set()
    for b in binaries:
        out = subprocess.run(["ldd", b], capture_output=True, text=True, timeout=30).stdout
        for lib, path in re.findall(r"^\s*(\S+) => (/\S+)", out, re.M):
            libraries.add((lib, path))
    packages = {}
    for lib, path in sorted(libraries):
        if lib.startswith("libdistrib"):
            continue  # libdistrib and its modules: copied from the install
        candidates = {path, os.path.realpath(path)}
        for c in list(candidates):
            if c.startswith("/usr/lib/"):
                candidates.add(c[len("/usr"):])
            elif c.startswith("/lib/"):
                candidates.add("/usr" + c)
        package = None
        for c in sorted(candidates):
            out = subprocess.run(["dpkg-query", "-S", c], capture_output=True, text=True)
            if out.returncode == 0:
                package = out.stdout.split(":")[0].strip()
                break
        if package is None:
            problems.append(f"{lib} ({path}) belongs to no Debian package: the runtime stage cannot install it")
        else:
            packages[lib] = package
    return packages


def check_dockerfile(path, source_dir, dscheduler, problems):
    name = os.path.relpath(path, source_dir)
    stages = dockerfile_stages(path)
    if len(stages) < 2:
        problems.append(f"{name}: expected a build stage and a runtime stage, found {len(stages)} FROM")
        return
    base, runtime = stages[-1]
    if not base.startswith("debian:12"):
        problems.append(f"{name}: the runtime stage is FROM {base}, not debian:12-slim")
    programs = installed_programs(source_dir)
    if not {"dscheduler", "dworker"} <= programs:
        problems.append(f"CMakeLists.txt: install rules install {sorted(programs)}, not dscheduler and dworker")
    commands = [(i, a) for i, a in runtime if i in ("ENTRYPOINT", "CMD")]
    if not commands:
        problems.append(f"{name}: the runtime stage has neither ENTRYPOINT nor CMD")
    for instruction, argument in commands[:1]:
        try:
            argv = json.loads(argument)
        except json.JSONDecodeError:
            problems.append(f"{name}: {instruction} {argument}: use the exec form [\"program\", ...]")
            continue
        if os.path.basename(argv[0]) not in programs:
            problems.append(f"{name}: {instruction} runs {argv[0]}, which the install does not produce "
                            f"(it installs {', '.join(sorted(programs))})")
    copies = " ".join(a for i, a in runtime if i == "COPY")
    for directory in ("bin", "lib"):
        if f"/usr/local/{directory}" not in copies:
            problems.append(f"{name}: the runtime stage copies nothing into /usr/local/{directory}")
    installs = set()
    for i, a in runtime:
        if i == "RUN":
            for part in re.split(r"&&|;", a):
                words = part.split()
                if "apt-get" in words and "install" in words:
                    installs.update(w for w in words[words.index("install") + 1:] if not w.startswith("-"))
    # The libraries the installed programs and modules load.
    libdistrib = None
    out = subprocess.run(["ldd", dscheduler], capture_output=True, text=True, timeout=30).stdout \
        if shutil.which("ldd") else ""
    m = re.search(r"libdistrib\.so\.\S* => (/\S+)", out)
    if m:
        libdistrib = m.group(1)
    binaries = [dscheduler, os.path.join(os.path.dirname(dscheduler), "dworker")]
    if libdistrib:
        binaries += [libdistrib] + sorted(glob.glob(os.path.join(os.path.dirname(libdistrib), "libdistrib_*.so")))
    packages = needed_packages([b for b in binaries if os.path.exists(b)], problems)
    if packages is None:
        print("note: no ldd or dpkg-query here: the runtime stage's packages are not checked")
        return
    for lib, package in sorted(packages.items()):
        if package not in installs and package not in BASE_IMAGE_PACKAGES:
            problems.append(f"{name}: the runtime stage does not install {package}, which provides {lib}")


# --- self-check: the checker must refuse what is wrong ---------------------------------

def self_check(flags):
    def problems_of(args, daemon="dworker", limit="4Gi"):
        container = {"name": "c", "command": [daemon], "args": args,
                     "resources": {"limits": {"memory": limit}},
                     "volumeMounts": [{"name": "t", "mountPath": "/etc/distrib"}]}
        pod = {"volumes": [{"name": "t", "secret": {"secretName": "s"}}]}
        found = []
        check_container("self-check", container, pod, flags, found)
        return found

    good = ["tcp://s:8786", "--nthreads", "2", "--memory-limit", "3GiB", "--auth-token-file", "/etc/distrib/token"]
    cases = {
        "a good command line": (good, False),
        "a flag that does not exist": (good + ["--no-such-flag"], True),
        "a flag that does not exist, with =": (good + ["--no-such-flag=1"], True),
        "a flag without its value": (good + ["--nthreads"], True),
        "a value given to a plain flag": (good + ["--insecure=yes"], True),
        "a memory limit above the container's": (good[:4] + ["--memory-limit", "5GiB"] + good[5:], True),
        "memory-limit auto": (good[:4] + ["--memory-limit", "auto"] + good[5:], True),
        "no token": (good[:5], True),
        "a token file outside the Secret": (good[:6] + ["/tmp/token"], True),
        "an undefined $(VAR)": (good + ["--name", "$(UNDEFINED)"], True),
    }
    for what, (args, bad) in cases.items():
        found = problems_of(args)
        if bool(found) != bad:
            raise SystemExit(f"self-check failed: {what}: {'not refused' if bad else found}")
    found = problems_of(["--port", "8786", "--no-such-flag", "--auth-token-file", "/etc/distrib/token"], "dscheduler")
    if not any("--no-such-flag" in p for p in found):
        raise SystemExit("self-check failed: dscheduler --no-such-flag was not refused")
    for name, takes_value in (("--nthreads", True), ("--insecure", False), ("--no-nanny", False), ("--preload", True)):
        if flags["dworker"].get(name) != takes_value:
            raise SystemExit(f"self-check failed: dworker --help read {name} as {flags['dworker'].get(name)}")
    for daemon, expected in (("dscheduler", "--no-work-stealing"), ("dworker", "--no-lifetime-restart")):
        if expected not in flags[daemon]:
            raise SystemExit(f"self-check failed: {daemon} --help read without {expected}")
    # A worker address that names the wrong Service or port.
    scheduler = ("s", {"--port": "8786"}, [], {"app": "s"},
                 {"ports": [{"name": "comm", "containerPort": 8786}]})
    services = [("f", {"metadata": {"name": "sched"},
                       "spec": {"selector": {"app": "s"}, "ports": [{"port": 8786, "targetPort": "comm"}]}})]
    for address, bad in (("tcp://sched:8786", False), ("tcp://other:8786", True), ("tcp://sched:9999", True)):
        found = []
        check_worker_address("self-check", address, services, [scheduler], found)
        if bool(found) != bad:
            raise SystemExit(f"self-check failed: worker address {address}: {found or 'not refused'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dscheduler", required=True)
    parser.add_argument("--dworker", required=True)
    parser.add_argument("--manifests", default=os.path.join(SOURCE_DIR, "deploy", "kubernetes"))
    parser.add_argument("--dockerfile", default=os.path.join(SOURCE_DIR, "deploy", "container", "Dockerfile"))
    args = parser.parse_args()

    flags = {"dscheduler": daemon_flags(args.dscheduler), "dworker": daemon_flags(args.dworker)}
    self_check(flags)
    problems = []
    schedulers, workers = check_manifests(args.manifests, flags, problems)
    if not schedulers:
        problems.append(f"{args.manifests}: no container runs dscheduler")
    if not workers:
        problems.append(f"{args.manifests}: no container runs dworker")
    check_dockerfile(args.dockerfile, SOURCE_DIR, args.dscheduler, problems)
    for p in problems:
        print(f"FAIL {p}")
    if problems:
        return 1
    print(f"ok: {len(schedulers)} scheduler and {len(workers)} worker containers in {args.manifests}, "
          f"{os.path.relpath(args.dockerfile, SOURCE_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
