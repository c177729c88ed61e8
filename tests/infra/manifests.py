"""Reading the deployment files the way their tools do, and the rules they must keep.

Each ``*_problems`` function takes parsed documents and answers a list of sentences naming what is
wrong (empty: nothing), so that ``test_manifests.py`` can run them on the files in the repository and
on deliberately broken copies, to show that each rule can fail.

What is parsed: ``infra/Dockerfile`` (its last stage), ``infra/compose.yaml`` (with compose's
``${VAR...}`` interpolation), the kustomize tree ``infra/k8s`` (built by a small subset of kustomize
written here: resources, components, configMapGenerator, patches, images, namespace; the real
``kubectl kustomize`` is compared with it when it is installed) and ``infra/k8s/secret.example.yaml``.
What the rules are measured against is read from the code: ``portal.config`` (the production check
itself, ``REQUIRED_IN_PRODUCTION``, ``RQ_QUEUES``), ``[project.scripts]`` of pyproject.toml, and the
click commands of ``portal.cli``.
"""

from __future__ import annotations

import ast
import copy
import re
import shlex
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
K8S = INFRA / "k8s"
IMAGE = "backoffice-portal"  # what infra/Dockerfile is built as (compose.yaml, the kustomize base)
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}


# --- the Dockerfile ---------------------------------------------------------------------------------------

@dataclass
class Dockerfile:
    stages: list[list[tuple[str, str]]]  # per stage: (INSTRUCTION, arguments), continuation lines joined

    @property
    def runtime(self) -> list[tuple[str, str]]:
        return self.stages[-1]

    def last(self, instruction: str) -> str | None:
        found = [args for ins, args in self.runtime if ins == instruction]
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        """The runtime stage's ENV, as a process in the image starts with it."""
        out: dict[str, str] = {}
        for ins, args in self.runtime:
            if ins == "ENV":
                for token in shlex.split(args):
                    name, _, value = token.partition("=")
                    out[name] = value
        return out

    def user(self) -> str | None:
        return self.last("USER")

    def uid(self) -> int | None:
        user = (self.user() or "").split(":")[0]
        return int(user) if user.isdigit() else None

    def workdir(self) -> str:
        return self.last("WORKDIR") or "/"

    def copied(self) -> dict[str, str]:
        """Paths in the image (absolute) -> the repository path copied there, by the runtime stage's COPY."""
        out: dict[str, str] = {}
        workdir = "/"
        for ins, args in self.runtime:
            if ins == "WORKDIR":
                workdir = args.strip()
            if ins != "COPY":
                continue
            parts = [p for p in shlex.split(args) if not p.startswith("--")]
            if "--from" in args:
                continue
            *sources, target = parts
            base = target if target.startswith("/") else f"{workdir.rstrip('/')}/{target.removeprefix('./')}"
            for source in sources:
                if target.endswith("/") or len(sources) > 1 or base.rstrip("/") == workdir.rstrip("/"):
                    out[f"{base.rstrip('/')}/{Path(source).name}"] = source
                else:
                    out[base.rstrip("/")] = source
        return out

    def apt_packages(self) -> set[str]:
        packages: set[str] = set()
        for ins, args in self.runtime:
            if ins == "RUN" and "apt-get install" in args:
                after = args.split("apt-get install", 1)[1].split("&&")[0]
                packages |= {t for t in after.split() if not t.startswith("-") and t != "\\"}
        return packages

    def json_form(self, instruction: str) -> list[str] | None:
        args = self.last(instruction)
        if args is None:
            return None
        try:
            value = yaml.safe_load(args)
        except yaml.YAMLError:
            return None
        return value if isinstance(value, list) else None


def read_dockerfile(path: Path = INFRA / "Dockerfile") -> Dockerfile:
    stages: list[list[tuple[str, str]]] = []
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    for line in logical:
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instruction, args.strip()))
    return Dockerfile(stages)


def dockerfile_problems(docker: Dockerfile) -> list[str]:
    problems = []
    if len(docker.stages) < 2:
        problems.append("Dockerfile: not multi-stage (build tools must stay out of the runtime image)")
    uid = docker.uid()
    if uid is None or uid == 0:
        problems.append(f"Dockerfile: the runtime stage's USER must be a numeric non-root id, not {docker.user()!r}")
    health = docker.last("HEALTHCHECK") or ""
    if "/healthz" not in health:
        problems.append("Dockerfile: no HEALTHCHECK on /healthz")
    migrations = docker.env().get("MIGRATIONS_DIR")
    if docker.copied().get(migrations or "") != "migrations":
        # An installed wheel has no migrations beside it: without this, /readyz can never say ready.
        problems.append(f"Dockerfile: MIGRATIONS_DIR ({migrations}) must name where the migrations are copied")
    packages = docker.apt_packages()
    for needed in ("tesseract-ocr", "tesseract-ocr-eng", "tesseract-ocr-vie", "libpango-1.0-0", "poppler-utils",
                   "libmagic1"):
        if needed not in packages:
            problems.append(f"Dockerfile: the runtime image lacks {needed}")
    if not any(p.startswith("fonts-") for p in packages):
        problems.append("Dockerfile: the runtime image has no fonts (statement PDFs need Vietnamese glyphs)")
    tools = {p for p in packages if p in {"build-essential", "gcc", "g++", "make", "git"} or p.endswith("-dev")}
    if tools:
        problems.append(f"Dockerfile: build tools in the runtime image: {sorted(tools)}")
    return problems


# --- compose ----------------------------------------------------------------------------------------------

_INTERPOLATION = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value: Any) -> str:
    """A compose value as the container sees it when the operator set every ``${X:?...}`` (compose refuses
    to start otherwise): those read ``<X>``; ``${X:-d}`` reads d; a bare ``${X}`` may be unset, so it reads
    as empty; ``$$`` is a dollar."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.group(1) or match.group(4), match.group(2), match.group(3)
        if operator in (":?", "?"):
            return f"<{name}>"
        if operator in (":-", "-"):
            return argument or ""
        return ""

    return _INTERPOLATION.sub(substitute, str(value))


def read_compose(path: Path = INFRA / "compose.yaml") -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def service_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): interpolate(v) for k, v in env.items()}


def portal_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose.get("services", {}).items()
            if str(s.get("image", "")).split(":")[0] == IMAGE or "Dockerfile" in str(s.get("build") or {})}


# --- kustomize (the subset the tree uses) ------------------------------------------------------------------

def load_all(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def read_env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            out[name.strip()] = value
    return out


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def kustomization(directory: Path) -> dict[str, Any]:
    return yaml.safe_load((directory / "kustomization.yaml").read_text()) or {}


def kustomization_dirs(root: Path = K8S) -> list[Path]:
    return sorted(p.parent for p in root.rglob("kustomization.yaml"))


def kustomization_file_problems(directory: Path) -> list[str]:
    """Every file or folder a kustomization names exists (and a folder is itself a kustomization)."""
    k = kustomization(directory)
    named: list[str] = list(k.get("resources", [])) + list(k.get("components", []))
    named += [p["path"] for p in k.get("patches", []) if "path" in p]
    named += list(k.get("patchesStrategicMerge", []))
    for generator in k.get("configMapGenerator", []) + k.get("secretGenerator", []):
        named += list(generator.get("envs", [])) + [f.split("=")[-1] for f in generator.get("files", [])]
    problems = []
    for name in named:
        path = directory / name
        if not path.exists():
            problems.append(f"{_rel(directory)}/kustomization.yaml names {name}, which does not exist")
        elif path.is_dir() and not (path / "kustomization.yaml").exists():
            problems.append(f"{_rel(directory)}/kustomization.yaml names {name}/, not a kustomization")
    return problems


def _merge(base: Any, patch: Any) -> Any:
    """A strategic merge, enough for this tree: maps merge, lists of named maps merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if (isinstance(base, list) and isinstance(patch, list) and patch
            and all(isinstance(x, dict) and "name" in x for x in base + patch)):
        out = [copy.deepcopy(x) for x in base]
        for item in patch:
            found = next((i for i, x in enumerate(out) if x["name"] == item["name"]), None)
            if found is None:
                out.append(copy.deepcopy(item))
            else:
                out[found] = _merge(out[found], item)
        return out
    return copy.deepcopy(patch)


def _json_patch(doc: dict[str, Any], operations: list[dict[str, Any]]) -> None:
    for op in operations:
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].strip("/").split("/")]
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        key: Any = int(last) if isinstance(node, list) and last.isdigit() else last
        if op["op"] in ("replace", "add"):
            if isinstance(node, list) and op["op"] == "add":
                node.insert(len(node) if last == "-" else key, op["value"])
            else:
                node[key] = op["value"]
        elif op["op"] == "remove":
            del node[key]


def _matches(doc: dict[str, Any], target: dict[str, Any]) -> bool:
    return all(doc.get(k) == v if k == "kind" else doc.get("metadata", {}).get(k) == v
               for k, v in target.items() if k in ("kind", "name"))


def pod_specs(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if doc.get("kind") == "CronJob":
        yield doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    elif doc.get("kind") in WORKLOADS:
        yield doc["spec"]["template"]["spec"]


def containers(doc: dict[str, Any], *, init: bool = True) -> Iterator[dict[str, Any]]:
    for spec in pod_specs(doc):
        yield from spec.get("containers", [])
        if init:
            yield from spec.get("initContainers", [])


def build(directory: Path) -> list[dict[str, Any]]:
    """The documents ``kustomize build directory`` makes, for what this tree uses (no name hashes)."""
    k = kustomization(directory)
    docs: list[dict[str, Any]] = []
    for name in k.get("resources", []):
        path = directory / name
        docs += build(path) if path.is_dir() else load_all(path)
    for name in k.get("components", []):
        docs += build(directory / name)
    for generator in k.get("configMapGenerator", []):
        data: dict[str, str] = {}
        for env in generator.get("envs", []):
            data.update(read_env_file(directory / env))
        for literal in generator.get("literals", []):
            key, _, value = literal.partition("=")
            data[key] = value
        existing = next((d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == generator["name"]),
                        None)
        if generator.get("behavior") == "merge" and existing is not None:
            existing["data"].update(data)
        else:
            docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]},
                         "data": data})
    for patch in k.get("patches", []):
        body = (directory / patch["path"]).read_text() if "path" in patch else patch["patch"]
        parsed = yaml.safe_load(body)
        if isinstance(parsed, list):
            for doc in docs:
                if _matches(doc, patch.get("target", {})):
                    _json_patch(doc, parsed)
        else:
            target = patch.get("target") or {"kind": parsed["kind"], "name": parsed["metadata"]["name"]}
            docs = [_merge(doc, parsed) if _matches(doc, target) else doc for doc in docs]
    for image in k.get("images", []):
        for doc in docs:
            for container in containers(doc):
                name, _, tag = container["image"].partition(":")
                if name == image["name"]:
                    new_tag = image.get("newTag", tag)
                    container["image"] = image.get("newName", name) + (f":{new_tag}" if new_tag else "")
    if "namespace" in k:
        for doc in docs:
            if doc["kind"] == "Namespace":
                doc["metadata"]["name"] = k["namespace"]
            else:
                doc["metadata"]["namespace"] = k["namespace"]
    return docs


def overlays() -> list[Path]:
    return sorted(p for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").exists())


def read_secret_examples(path: Path = K8S / "secret.example.yaml") -> dict[str, dict[str, str]]:
    return {d["metadata"]["name"]: {k: str(v) for k, v in (d.get("stringData") or {}).items()}
            for d in load_all(path) if d.get("kind") == "Secret"}


# --- the code's side ----------------------------------------------------------------------------------------

def project_scripts() -> dict[str, str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("scripts", {})


def project_dependencies() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


def defines(module_file: Path, name: str) -> bool:
    """Whether the module assigns ``name`` at its top level, or in a top-level ``try`` (read, not imported)."""
    statements = list(ast.parse(module_file.read_text()).body)
    while statements:
        node = statements.pop()
        if isinstance(node, ast.Try):
            statements += node.body
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return True
    return False


@dataclass
class EntryPoints:
    """What a container may run: gunicorn on the WSGI app with the settings file, or a real command of
    ``portal`` (checked by click itself, with ``--help`` after the arguments: an unknown command or option
    fails the parse)."""

    docker: Dockerfile
    cli_check: Callable[[list[str]], str | None]
    scripts: dict[str, str] = field(default_factory=project_scripts)

    def problems(self, where: str, argv: list[str]) -> list[str]:
        if not argv or not all(isinstance(a, str) for a in argv):
            return [f"{where}: the command must be a list of strings, not {argv!r}"]
        copied = self.docker.copied()
        workdir = self.docker.workdir().rstrip("/")
        problems = []
        for flag, value in zip(argv, argv[1:], strict=False):
            if flag == "--directory" and value not in copied:
                problems.append(f"{where}: {value} is not in the image (Dockerfile COPY)")
        if argv[0] == "gunicorn":
            if not any(d.split("[")[0].split(">")[0].split("~")[0].strip() == "gunicorn"
                       for d in project_dependencies()):
                problems.append(f"{where}: gunicorn is not a dependency of the project")
            options = dict(zip(argv[1::2], argv[2::2], strict=False))
            conf = options.get("-c") or options.get("--config")
            if not conf or f"{workdir}/{conf}" not in copied or not (ROOT / copied[f"{workdir}/{conf}"]).exists():
                problems.append(f"{where}: gunicorn must run with -c infra/gunicorn.conf.py as copied into the image")
            app = argv[-1]
            module, _, attribute = app.partition(":")
            source = copied.get(f"{workdir}/{module.replace('.', '/')}.py")
            if not attribute or source is None or not defines(ROOT / source, attribute):
                problems.append(f"{where}: gunicorn's application {app!r} is not defined in the image")
            return problems
        if argv[0] not in self.scripts:
            return problems + [f"{where}: {argv[0]!r} is neither gunicorn nor a script of [project.scripts]"]
        error = self.cli_check(argv[1:])
        if error:
            problems.append(f"{where}: `{' '.join(argv)}` is not a command of {argv[0]}: {error}")
        return problems


# --- the rules ------------------------------------------------------------------------------------------------

def config_problems(where: str, env: dict[str, str], required: tuple[str, ...],
                    load: Callable[[dict[str, str]], Any]) -> list[str]:
    """The app's own production check passes with ``env``, and each required variable is set (not empty)."""
    problems = [f"{where}: {name} is not provided" for name in required if not env.get(name)]
    if env.get("PORTAL_ENV") != "production":
        problems.append(f"{where}: PORTAL_ENV is {env.get('PORTAL_ENV')!r}, not production")
    try:
        load(env)
    except Exception as exc:  # ConfigError, or a setting that does not parse
        problems.append(f"{where}: the app refuses to start: {exc}")
    return problems


def worker_queues(argv: list[str], all_queues: list[str]) -> list[str]:
    if "--queues" in argv:
        return [q.strip() for q in argv[argv.index("--queues") + 1].split(",") if q.strip()]
    return list(all_queues)


def ticks(argv: list[str]) -> bool:
    """Whether the process enqueues the periodic jobs: `portal scheduler`, or a worker left with its tick."""
    return argv[:2] == ["portal", "scheduler"] or (argv[:2] == ["portal", "worker"] and "--no-scheduler" not in argv)


def queue_problems(where: str, workers: list[list[str]], all_queues: list[str]) -> list[str]:
    problems = []
    taken: set[str] = set()
    for argv in workers:
        names = worker_queues(argv, all_queues)
        unknown = [q for q in names if q not in all_queues]
        if unknown:
            problems.append(f"{where}: workers listen to queues the code never uses: {unknown}")
        taken |= set(names)
    missing = [q for q in all_queues if q not in taken]
    if missing:
        problems.append(f"{where}: no worker takes the queues {missing} (portal/config.py RQ_QUEUES)")
    return problems


def compose_problems(compose: dict[str, Any], docker: Dockerfile, entry: EntryPoints, required: tuple[str, ...],
                     load: Callable[[dict[str, str]], Any], all_queues: list[str]) -> list[str]:
    problems: list[str] = []
    services = compose.get("services", {})
    portal = portal_services(compose)
    if not portal:
        return ["compose: no service runs the portal image"]
    image_default = docker.json_form("CMD") or []
    schedulers, workers, migrations = 0, [], []
    for name, service in portal.items():
        where = f"compose service {name}"
        env = {**docker.env(), **service_env(service)}
        problems += config_problems(where, env, required, load)
        command = service.get("command", image_default)
        if isinstance(command, str):
            problems.append(f"{where}: write the command as a list (a string goes through no shell here)")
            command = shlex.split(command)
        problems += entry.problems(where, command)
        user = str(service.get("user", "")).split(":")[0]
        if user and (not user.isdigit() or int(user) == 0):
            problems.append(f"{where}: user {service['user']!r} (root or a name); leave the image's numeric user")
        if service.get("privileged"):
            problems.append(f"{where}: privileged")
        if "entrypoint" in service:
            problems.append(f"{where}: overrides the image's entrypoint (tini)")
        replicas = int((service.get("deploy") or {}).get("replicas", 1))
        if ticks(command):
            schedulers += replicas
        if command[:2] == ["portal", "worker"]:
            workers.append(command)
        if command[:3] == ["portal", "db", "upgrade"]:
            migrations.append(name)
            if str(service.get("restart", "no")) != "no":
                problems.append(f"{where}: migrations are a one-shot (restart: \"no\")")
        if command and command[0] == "gunicorn":
            test = " ".join(map(str, (service.get("healthcheck") or {}).get("test", [])))
            test = test or (docker.last("HEALTHCHECK") or "")
            if "/healthz" not in test and "/readyz" not in test:
                problems.append(f"{where}: no health check on /healthz or /readyz")
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith(".") and not (INFRA / source).exists():
                problems.append(f"{where}: mounts {source}, which does not exist")
    if schedulers != 1:
        problems.append(f"compose: {schedulers} processes enqueue the periodic jobs; exactly one must "
                        "(`portal scheduler`, and every worker with --no-scheduler)")
    problems += queue_problems("compose", workers, all_queues)
    if len(migrations) != 1:
        problems.append(f"compose: {len(migrations)} migration services; there must be one one-shot")
    else:
        for name, service in portal.items():
            if name in migrations:
                continue
            depends = service.get("depends_on") or {}
            if (depends.get(migrations[0]) or {}).get("condition") != "service_completed_successfully":
                problems.append(f"compose service {name}: does not wait for the migrations to complete")
    for name, service in portal.items():
        env = service_env(service)
        if env.get("STORAGE_BACKEND") != "s3":
            problems.append(f"compose service {name}: does not use the S3-compatible store (STORAGE_BACKEND=s3)")
        endpoint = env.get("S3_ENDPOINT_URL", "")
        host = re.sub(r"^\w+://", "", endpoint).split(":")[0].split("/")[0]
        if host not in services:
            problems.append(f"compose service {name}: S3_ENDPOINT_URL {endpoint!r} is no service of this file")
    for name in ("postgres", "redis"):
        if not any(name in str(s.get("image", "")) for s in services.values()):
            problems.append(f"compose: no {name} service")
    return problems


def _quantity(value: Any) -> float:
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def resource_problems(where: str, container: dict[str, Any]) -> list[str]:
    resources = container.get("resources") or {}
    problems = []
    for kind in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            if resource not in (resources.get(kind) or {}):
                problems.append(f"{where}: no {resource} {kind}")
    for resource in ("cpu", "memory"):
        request = (resources.get("requests") or {}).get(resource)
        limit = (resources.get("limits") or {}).get(resource)
        if request is not None and limit is not None and _quantity(request) > _quantity(limit):
            problems.append(f"{where}: {resource} request {request} over its limit {limit}")
    return problems


def security_problems(where: str, pod: dict[str, Any], container: dict[str, Any], uid: int | None) -> list[str]:
    pod_sc = pod.get("securityContext") or {}
    sc = container.get("securityContext") or {}
    problems = []
    run_as = sc.get("runAsUser", pod_sc.get("runAsUser"))
    if (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))) is not True:
        problems.append(f"{where}: runAsNonRoot is not true")
    if run_as is None or run_as == 0 or (uid is not None and run_as != uid):
        problems.append(f"{where}: runAsUser {run_as!r}; it must be the image's user {uid}")
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{where}: allowPrivilegeEscalation is not false")
    if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
        problems.append(f"{where}: capabilities are not all dropped")
    if sc.get("privileged"):
        problems.append(f"{where}: privileged")
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{where}: the root filesystem is writable (readOnlyRootFilesystem)")
    else:
        mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
        if "/tmp" not in mounts:  # noqa: S108 - the path checked, not used
            problems.append(f"{where}: read-only root without a writable /tmp")
    return problems


def _all_values(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _all_values(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _all_values(value, f"{path}[{i}]")
    else:
        yield path, node


def raw_file_problems(directory: Path = K8S) -> list[str]:
    """Whatever a file or an inline patch says, anywhere in the tree: never root, never privileged."""
    problems = []
    for path in sorted(directory.rglob("*.yaml")):
        docs: list[Any] = load_all(path)
        if path.name == "kustomization.yaml":  # its inline patches; a JSON patch op reads as {last part: value}
            inline = [yaml.safe_load(p["patch"]) for d in docs for p in d.get("patches", []) if "patch" in p]
            docs = [op if not isinstance(op, dict) or "op" not in op else {op["path"].rsplit("/", 1)[-1]:
                                                                             op.get("value")}
                    for patch in inline for op in (patch if isinstance(patch, list) else [patch])]
        for doc in docs:
            for key, value in _all_values(doc):
                name = key.rsplit(".", 1)[-1]
                bad = ((name in ("runAsUser", "runAsGroup") and value == 0)
                       or (name in ("runAsNonRoot", "readOnlyRootFilesystem") and value is False)
                       or (name in ("privileged", "allowPrivilegeEscalation", "hostNetwork", "hostPID")
                           and value is True))
                if bad:
                    problems.append(f"{_rel(path)}: {key.lstrip('.')} = {value!r}")
    return problems


def k8s_problems(where: str, docs: list[dict[str, Any]], docker: Dockerfile, entry: EntryPoints,
                 required: tuple[str, ...], load: Callable[[dict[str, str]], Any], all_queues: list[str],
                 secrets: dict[str, dict[str, str]]) -> list[str]:
    """The rules, on the documents of one built overlay."""
    problems: list[str] = []
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in by_kind.get("ConfigMap", [])}

    def configmap(name: str) -> dict[str, str] | None:
        # kustomize appends a hash of the contents to a generated name (and to every reference to it).
        return config_maps.get(name) or next((v for k, v in config_maps.items()
                                              if re.fullmatch(rf"{re.escape(name)}-[a-z0-9]{{10}}", k)), None)

    uid = docker.uid()
    image_default = docker.json_form("CMD") or []
    ticking = 0
    workers: list[list[str]] = []
    web = []
    migration_jobs = 0
    hpa_targets = {(d["spec"]["scaleTargetRef"]["kind"], d["spec"]["scaleTargetRef"]["name"])
                   for d in by_kind.get("HorizontalPodAutoscaler", [])}
    for doc in docs:
        if doc["kind"] not in WORKLOADS:
            continue
        name = doc["metadata"]["name"]
        for pod in pod_specs(doc):
            if pod.get("automountServiceAccountToken") is not False:
                problems.append(f"{where} {doc['kind']} {name}: mounts a Kubernetes API token it never uses")
            for container in containers(doc):
                cwhere = f"{where} {doc['kind']} {name}/{container['name']}"
                problems += resource_problems(cwhere, container)
                problems += security_problems(cwhere, pod, container, uid)
                image = container.get("image", "")
                if IMAGE not in image.rsplit("/", 1)[-1].split(":")[0]:
                    continue
                if image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1]:
                    problems.append(f"{cwhere}: image {image!r} has no release tag")
                if "command" in container:
                    problems.append(f"{cwhere}: sets command (replacing the entrypoint tini); use args")
                argv = container.get("args", image_default)
                problems += entry.problems(cwhere, argv)
                env = dict(docker.env())
                for source in container.get("envFrom", []):
                    if "configMapRef" in source:
                        data = configmap(source["configMapRef"]["name"])
                        if data is None:
                            problems.append(f"{cwhere}: no ConfigMap {source['configMapRef']['name']}")
                        env.update(data or {})
                    if "secretRef" in source:
                        secret = secrets.get(source["secretRef"]["name"])
                        if secret is None:
                            problems.append(f"{cwhere}: Secret {source['secretRef']['name']} is not in "
                                            "secret.example.yaml")
                        env.update(secret or {})
                for var in container.get("env", []):
                    if "value" in var:
                        env[var["name"]] = str(var["value"])
                    elif "secretKeyRef" in var.get("valueFrom", {}):
                        ref = var["valueFrom"]["secretKeyRef"]
                        value = secrets.get(ref["name"], {}).get(ref["key"])
                        if value is None:
                            problems.append(f"{cwhere}: {var['name']} from Secret {ref['name']}/{ref['key']}, "
                                            "which secret.example.yaml does not have")
                        env[var["name"]] = value or ""
                    elif "configMapKeyRef" in var.get("valueFrom", {}):
                        ref = var["valueFrom"]["configMapKeyRef"]
                        env[var["name"]] = (configmap(ref["name"]) or {}).get(ref["key"], "")
                problems += config_problems(cwhere, env, required, load)
                mounts = [m["mountPath"] for m in container.get("volumeMounts", [])]
                for setting in ("PORTAL_INSTANCE", "KEY_DIR"):
                    folder = env.get(setting)
                    mounted = any(folder == m or str(folder).startswith(m.rstrip("/") + "/") for m in mounts)
                    # Migrations touch no key; every other process may.
                    if folder and not mounted and (setting == "PORTAL_INSTANCE"
                                                   or argv[:3] != ["portal", "db", "upgrade"]):
                        problems.append(f"{cwhere}: {setting} {folder} is on no volume")
                replicas = doc["spec"].get("replicas", 1) if doc["kind"] != "Job" else 1
                if ticks(argv):
                    ticking += replicas + (("Deployment", name) in hpa_targets)  # an autoscaler adds more
                    if doc["kind"] != "Deployment" or doc["spec"].get("replicas") != 1:
                        problems.append(f"{cwhere}: enqueues the periodic jobs (`portal scheduler`, or a worker "
                                        "without --no-scheduler), so it must be a Deployment of exactly one replica")
                    if (doc["spec"].get("strategy") or {}).get("type") != "Recreate":
                        problems.append(f"{cwhere}: the scheduler's Deployment must use the Recreate strategy "
                                        "(a rolling update runs two)")
                if argv[:2] == ["portal", "worker"]:
                    workers.append(argv)
                if argv[:3] == ["portal", "db", "upgrade"]:
                    if doc["kind"] == "Job":
                        migration_jobs += 1
                    else:
                        problems.append(f"{cwhere}: migrations run as a Job, once")
                if argv and argv[0] == "gunicorn":
                    web.append((doc, container))
                for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                    path = ((container.get(probe) or {}).get("httpGet") or {}).get("path")
                    if path is not None and path not in ("/healthz", "/readyz"):
                        problems.append(f"{cwhere}: {probe} on {path}; the app answers /healthz and /readyz")
    if ticking != 1:
        problems.append(f"{where}: {ticking} processes enqueue the periodic jobs; exactly one must")
    problems += queue_problems(where, workers, all_queues)
    if migration_jobs != 1:
        problems.append(f"{where}: {migration_jobs} migration Jobs; there must be one")
    if not web:
        problems.append(f"{where}: no web Deployment (gunicorn)")
    services = by_kind.get("Service", [])
    pdbs = by_kind.get("PodDisruptionBudget", [])
    for doc, container in web:
        cwhere = f"{where} {doc['kind']} {doc['metadata']['name']}/{container['name']}"
        live = ((container.get("livenessProbe") or {}).get("httpGet") or {}).get("path")
        ready = ((container.get("readinessProbe") or {}).get("httpGet") or {}).get("path")
        if live != "/healthz":
            problems.append(f"{cwhere}: liveness must be /healthz (not {live!r}): a dependency outage must not "
                            "restart every pod")
        if ready != "/readyz":
            problems.append(f"{cwhere}: readiness must be /readyz, not {ready!r}")
        ports = {p.get("name") for p in container.get("ports", [])} | {p["containerPort"] for p in
                                                                      container.get("ports", [])}
        for probe in ("livenessProbe", "readinessProbe"):
            port = ((container.get(probe) or {}).get("httpGet") or {}).get("port")
            if port is not None and port not in ports:
                problems.append(f"{cwhere}: {probe} on port {port!r}, which the container does not open")
        labels = doc["spec"]["template"]["metadata"]["labels"]
        if ("Deployment", doc["metadata"]["name"]) not in hpa_targets:
            problems.append(f"{cwhere}: no HorizontalPodAutoscaler scales the web Deployment")
        if not any(s["spec"].get("selector") and s["spec"]["selector"].items() <= labels.items() for s in services):
            problems.append(f"{cwhere}: no Service selects the web pods")
    for doc in docs:
        if doc["kind"] != "Deployment":
            continue
        labels = doc["spec"]["template"]["metadata"]["labels"]
        covered = [p for p in pdbs if p["spec"]["selector"].get("matchLabels", {}).items() <= labels.items()]
        argv = next(iter(containers(doc, init=False)), {}).get("args", image_default)
        if ticks(argv):
            if covered:
                problems.append(f"{where} {doc['metadata']['name']}: a PodDisruptionBudget on the single "
                                "scheduler blocks every node drain")
        elif not covered:
            problems.append(f"{where} Deployment {doc['metadata']['name']}: no PodDisruptionBudget")
    for hpa in by_kind.get("HorizontalPodAutoscaler", []):
        ref = hpa["spec"]["scaleTargetRef"]
        if not any(d["kind"] == ref["kind"] and d["metadata"]["name"] == ref["name"] for d in docs):
            problems.append(f"{where}: the autoscaler {hpa['metadata']['name']} scales nothing that exists")
    return problems
