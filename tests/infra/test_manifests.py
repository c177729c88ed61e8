"""The deployment files, parsed and held to the code: infra/Dockerfile, infra/compose.yaml, infra/k8s.

Every variable the app requires in production reaches every container that runs the app (the app's own
production check, ``portal.config.load``, passes with what the container gets); images and commands are
the code's entry points (gunicorn on ``wsgi:app`` with ``infra/gunicorn.conf.py``, or a real ``portal``
command, checked by click); nothing runs as root; probes are /healthz and /readyz; exactly one process
enqueues the periodic jobs; every container has requests and limits; kustomizations name only files that
exist. The last tests break the files on purpose and check that each rule notices.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from portal.config import REQUIRED_IN_PRODUCTION, load
from tests.infra import manifests as m


def _load(env: dict[str, str]) -> Any:
    """The app's configuration as it starts in a container: a folder the image copies is read from the checkout."""
    copied = m.read_dockerfile().copied()
    return load(env={k: str(m.ROOT / copied[v]) if v in copied else v for k, v in env.items()})


QUEUES: list[str] = load(env={})["RQ_QUEUES"]


@pytest.fixture(scope="module")
def docker() -> m.Dockerfile:
    return m.read_dockerfile()


@pytest.fixture(scope="module")
def cli_check() -> Callable[[list[str]], str | None]:
    """``portal <args> --help`` through the real click group (the Flask CLI plus the portal's commands and
    Flask-Migrate's ``db``), on an app that connects to nothing."""
    from click.testing import CliRunner
    from flask.cli import ScriptInfo

    from portal import create_app
    from portal.cli import main

    instance = tempfile.mkdtemp(prefix="portal-manifests-")
    nowhere = "postgresql+psycopg://nobody@127.0.0.1:9/nothing"
    made: list[Any] = []

    def make() -> Any:
        if not made:
            made.append(create_app({"DATABASE_URL": nowhere, "MIGRATION_DATABASE_URL": nowhere,
                                    "REDIS_URL": "redis://127.0.0.1:9/0", "INSTANCE_PATH": instance,
                                    "SECRET_KEY": "x" * 32, "FIELD_KEY": "y" * 44}))
        return made[0]

    def check(args: list[str]) -> str | None:
        result = CliRunner().invoke(main, [*args, "--help"], obj=ScriptInfo(create_app=make))
        lines = result.output.strip().splitlines()
        if result.exit_code != 0:
            return lines[-1] if lines else repr(result.exception)
        if lines and "COMMAND [ARGS]" in lines[0]:
            return "a group of commands, not a command"
        return None

    yield check
    shutil.rmtree(instance, ignore_errors=True)


@pytest.fixture(scope="module")
def entry(docker, cli_check) -> m.EntryPoints:  # noqa: ANN001
    return m.EntryPoints(docker, cli_check)


@pytest.fixture(scope="module")
def secrets() -> dict[str, dict[str, str]]:
    return m.read_secret_examples()


def _k8s(where: str, docs, docker, entry, secrets) -> list[str]:  # noqa: ANN001
    return m.k8s_problems(where, docs, docker, entry, REQUIRED_IN_PRODUCTION, _load, QUEUES, secrets)


def _compose(compose, docker, entry) -> list[str]:  # noqa: ANN001
    return m.compose_problems(compose, docker, entry, REQUIRED_IN_PRODUCTION, _load, QUEUES)


# --- the files as they are ----------------------------------------------------------------------------------

def test_the_image_is_multi_stage_non_root_with_ocr_fonts_and_a_health_check(docker, entry):
    assert m.dockerfile_problems(docker) == []
    assert docker.json_form("ENTRYPOINT") == ["tini", "--"]  # PID 1 reaps the OCR children, forwards SIGTERM
    assert entry.problems("Dockerfile CMD", docker.json_form("CMD")) == []
    assert docker.env()["PORTAL_ENV"] == "production"


def test_compose_runs_the_code_entry_points_with_every_setting_and_one_scheduler(docker, entry):
    compose = m.read_compose()
    assert _compose(compose, docker, entry) == []
    services = compose["services"]
    assert {"postgres", "redis", "minio", "minio-setup", "migrate", "web", "scheduler"} <= set(services)
    # A worker pool per queue weight: the light queues apart from the heavy one.
    pools = {name: m.worker_queues(s["command"], QUEUES) for name, s in services.items()
             if s.get("command", [])[:2] == ["portal", "worker"]}
    assert sorted(pools.values()) == [["default", "mail"], ["intake_heavy"]]


def test_every_kustomization_names_only_files_that_exist():
    dirs = m.kustomization_dirs()
    assert {d.relative_to(m.K8S).as_posix() for d in dirs} >= {"base", "overlays/staging", "overlays/production"}
    assert [p for d in dirs for p in m.kustomization_file_problems(d)] == []


def test_the_base_is_namespace_agnostic_and_secrets_are_only_referenced(secrets):
    base = m.build(m.K8S / "base")
    assert [d["metadata"]["name"] for d in base if "namespace" in d["metadata"]] == []
    for directory in m.kustomization_dirs():
        k = m.kustomization(directory)
        assert "secretGenerator" not in k, f"{directory}: secrets are created outside the repository"
        assert not any("secret" in str(r) for r in k.get("resources", [])), directory
    assert not any(d["kind"] == "Secret" for o in m.overlays() for d in m.build(o))
    # The example holds placeholders only, never a real value.
    assert set(secrets) == {"portal-secrets", "portal-migration"}
    assert [f"{s}/{k}" for s, data in secrets.items() for k, v in data.items() if "REPLACE_ME" not in v] == []


@pytest.mark.parametrize("overlay", m.overlays(), ids=lambda p: p.name)
def test_each_overlay_keeps_every_rule(overlay, docker, entry, secrets):
    assert _k8s(overlay.name, m.build(overlay), docker, entry, secrets) == []


def test_no_file_or_patch_of_the_tree_runs_as_root_or_privileged():
    assert m.raw_file_problems() == []


def _kustomize() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


@pytest.mark.skipif(_kustomize() is None, reason="neither kustomize nor kubectl is installed")
@pytest.mark.parametrize("overlay", m.overlays(), ids=lambda p: p.name)
def test_kustomize_itself_builds_what_the_rules_read(overlay, docker, entry, secrets):
    """The real kustomize agrees with tests/infra/manifests.py's reading, and its output keeps the rules too."""
    built = subprocess.run([*_kustomize(), str(overlay)], capture_output=True, text=True, timeout=120, check=True)
    real = [d for d in yaml.safe_load_all(built.stdout) if d]
    ours = m.build(overlay)

    def shape(docs: list[dict]) -> dict:
        out = {}
        for d in docs:
            name = d["metadata"]["name"]
            if d["kind"] == "ConfigMap":
                name = name.rsplit("-", 1)[0] if name.count("-") > 1 else name
            key = (d["kind"], name)
            out[key] = {"namespace": d["metadata"].get("namespace"), "replicas": d.get("spec", {}).get("replicas"),
                        "data": d.get("data"), "containers": [(c["name"], c["image"], c.get("args"))
                                                              for c in m.containers(d)]}
        return out

    assert shape(real) == shape(ours)
    assert _k8s(f"{overlay.name} (kustomize)", real, docker, entry, secrets) == []
    assert _schema_problems(real, K8S_VERSIONS[-1]) == []


def _compose_schema_problems(path: Path) -> list[str]:
    """``path`` against the Compose Specification's own JSON schema (check-jsonschema's copy), strictly: a
    misspelt key is an error, where Compose would refuse the file only on the operator's machine."""
    done = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
                           str(path)], capture_output=True, text=True, timeout=120)
    return [] if done.returncode == 0 else [line.strip() for line in done.stdout.splitlines() if "::$" in line]


def test_the_compose_file_meets_the_compose_specification_and_a_misspelt_key_does_not(tmp_path):
    assert _compose_schema_problems(m.INFRA / "compose.yaml") == []
    broken = tmp_path / "compose.yaml"
    broken.write_text((m.INFRA / "compose.yaml").read_text().replace("    healthcheck:", "    healthchek:", 1))
    found = _compose_schema_problems(broken)
    assert len(found) == 1 and "'healthchek' was unexpected" in found[0], found


def _hadolint(dockerfile: Path) -> list[str]:
    """hadolint's findings on ``dockerfile`` with the rules of ``infra/.hadolint.yaml`` (the two it does not
    follow are written there with why)."""
    pinned = Path(sys.executable).with_name("hadolint")  # the version pyproject.toml names, before any other
    binary = str(pinned) if pinned.exists() else shutil.which("hadolint")
    done = subprocess.run([binary, "--config", str(m.INFRA / ".hadolint.yaml"), "--no-color", str(dockerfile)],
                          capture_output=True, text=True, timeout=120)
    return [line.split(" ", 1)[1] for line in done.stdout.splitlines() if line.strip()] if done.returncode else []


def test_the_dockerfile_passes_hadolint_and_a_root_user_or_a_pipe_without_pipefail_does_not(tmp_path):
    assert _hadolint(m.INFRA / "Dockerfile") == []
    broken = tmp_path / "Dockerfile"
    broken.write_text((m.INFRA / "Dockerfile").read_text()
                      + "USER 0\nRUN curl -fsSL https://example.test/setup.sh | sh\n")
    found = " ".join(_hadolint(broken))
    assert "DL3002" in found and "DL4006" in found, found  # the last user root; a pipe that hides a failure


# Kubernetes releases whose schemas every document must meet: the oldest still in standard support on EKS
# when this was written, and the newest kubernetes-validate knows.
K8S_VERSIONS = ("1.31.0", "1.37.0")
# Kinds no Kubernetes schema describes: the Prometheus Operator's custom resources (components/prometheus).
CUSTOM_KINDS = {"ServiceMonitor", "PodMonitor"}


def _schema_problems(docs: list[dict], version: str) -> list[str]:
    """Every document checked against Kubernetes' own OpenAPI schema of ``version``, strictly (an unknown field
    is an error: a typo Kubernetes would drop, or refuse, silently here)."""
    import kubernetes_validate

    problems = []
    for doc in docs:
        if doc["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{doc['kind']} {doc['metadata']['name']}: {exc.message}")
    return problems


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("overlay", m.overlays(), ids=lambda p: p.name)
def test_every_manifest_meets_kubernetes_own_schema(overlay, version):
    docs = m.build(overlay)
    assert {d["kind"] for d in docs} >= {"Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Job",
                                           "ConfigMap", "Service"}
    assert _schema_problems(docs, version) == []


def test_the_schema_check_notices_a_misspelt_field_and_a_wrong_type():
    docs = m.build(m.overlays()[0])
    web = copy.deepcopy(next(d for d in docs if d["kind"] == "Deployment"))
    container = web["spec"]["template"]["spec"]["containers"][0]
    container["resource"] = container.pop("resources")  # misspelt: Kubernetes would run it without limits
    scaler = copy.deepcopy(next(d for d in docs if d["kind"] == "HorizontalPodAutoscaler"))
    scaler["spec"]["maxReplicas"] = "ten"
    found = _schema_problems([web, scaler], K8S_VERSIONS[-1])
    assert len(found) == 2 and "'resource' was unexpected" in found[0] and "'ten'" in found[1], found


# --- the rules can fail ----------------------------------------------------------------------------------------

def _find(docs: list[dict], kind: str, name: str) -> dict:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def _container(docs: list[dict], name: str) -> dict:
    return next(m.containers(_find(docs, "Deployment", name)))


def _set_args(name: str, args: list[str]) -> Callable[[list[dict], dict], None]:
    return lambda docs, secrets: _container(docs, name).__setitem__("args", args)


K8S_BREAKAGES: dict[str, tuple[Callable[[list[dict], dict], None], str]] = {
    "a required secret missing": (lambda docs, s: s["portal-secrets"].pop("SECRET_KEY"),
                                  "SECRET_KEY is not provided"),
    "not in production mode": (lambda docs, s: _find(docs, "ConfigMap", "portal-config")["data"].update(
        PORTAL_ENV="development"), "PORTAL_ENV is 'development'"),
    "a setting the app refuses": (lambda docs, s: _find(docs, "ConfigMap", "portal-config")["data"].update(
        METRICS_OPEN="true"), "the app refuses to start"),
    "a secret the example lacks": (lambda docs, s: _container(docs, "portal-web")["envFrom"].append(
        {"secretRef": {"name": "portal-other"}}), "Secret portal-other is not in secret.example.yaml"),
    "web as root": (lambda docs, s: _find(docs, "Deployment", "portal-web")["spec"]["template"]["spec"][
        "securityContext"].update(runAsUser=0), "runAsUser 0"),
    "a writable root": (lambda docs, s: _container(docs, "portal-worker")["securityContext"].update(
        readOnlyRootFilesystem=False), "the root filesystem is writable"),
    "privilege escalation": (lambda docs, s: _container(docs, "portal-scheduler")["securityContext"].pop(
        "allowPrivilegeEscalation"), "allowPrivilegeEscalation is not false"),
    "readiness elsewhere": (lambda docs, s: _container(docs, "portal-web")["readinessProbe"]["httpGet"].update(
        path="/ready"), "readinessProbe on /ready"),
    "liveness on readiness": (lambda docs, s: _container(docs, "portal-web")["livenessProbe"]["httpGet"].update(
        path="/readyz"), "liveness must be /healthz"),
    "two schedulers": (lambda docs, s: _find(docs, "Deployment", "portal-scheduler")["spec"].update(replicas=2),
                       "2 processes enqueue the periodic jobs"),
    "a worker that ticks": (_set_args("portal-worker", ["portal", "worker", "--queues", "default,mail"]),
                            "4 processes enqueue the periodic jobs"),  # its 3 replicas and the scheduler
    "a rolling scheduler": (lambda docs, s: _find(docs, "Deployment", "portal-scheduler")["spec"].update(
        strategy={"type": "RollingUpdate"}), "Recreate"),
    "no memory limit": (lambda docs, s: _container(docs, "portal-worker-heavy")["resources"]["limits"].pop(
        "memory"), "no memory limits"),
    "no requests": (lambda docs, s: _container(docs, "portal-web")["resources"].pop("requests"),
                    "no cpu requests"),
    "a command the CLI lacks": (_set_args("portal-worker", ["portal", "wrker", "--no-scheduler"]),
                                "is not a command of portal"),
    "an option the CLI lacks": (_set_args("portal-worker", ["portal", "worker", "--queue", "default,mail",
                                                            "--no-scheduler"]), "is not a command of portal"),
    "a group, not a command": (_set_args("portal-scheduler", ["portal", "db"]), "a group of commands"),
    "a program not in the project": (_set_args("portal-worker", ["rq", "worker", "--no-scheduler"]),
                                     "neither gunicorn nor a script"),
    "the wrong WSGI app": (_set_args("portal-web", ["gunicorn", "-c", "infra/gunicorn.conf.py", "wsgi:application"]),
                           "is not defined in the image"),
    "gunicorn without its settings": (_set_args("portal-web", ["gunicorn", "wsgi:app"]), "-c infra/gunicorn.conf.py"),
    "the entrypoint replaced": (lambda docs, s: _container(docs, "portal-web").__setitem__("command", ["sh"]),
                                "sets command"),
    "a queue nobody takes": (_set_args("portal-worker-heavy", ["portal", "worker", "--queues", "heavy",
                                                               "--no-scheduler"]), "no worker takes the queues"),
    "no budget": (lambda docs, s: docs.remove(_find(docs, "PodDisruptionBudget", "portal-worker")),
                  "Deployment portal-worker: no PodDisruptionBudget"),
    "no autoscaler": (lambda docs, s: docs.remove(_find(docs, "HorizontalPodAutoscaler", "portal-web")),
                      "no HorizontalPodAutoscaler"),
    "an untagged image": (lambda docs, s: _container(docs, "portal-web").__setitem__("image", "backoffice-portal"),
                          "has no release tag"),
    "no migration Job": (lambda docs, s: docs.remove(_find(docs, "Job", "portal-migrate")), "0 migration Jobs"),
    "the keys on no volume": (lambda docs, s: _container(docs, "portal-worker")["volumeMounts"].pop(),
                              "KEY_DIR /var/lib/portal-keys/keys is on no volume"),
}


@pytest.mark.parametrize("breakage", list(K8S_BREAKAGES))
def test_a_broken_overlay_is_refused(breakage, docker, entry, secrets):
    docs, broken_secrets = m.build(m.K8S / "overlays" / "production"), copy.deepcopy(secrets)
    change, expected = K8S_BREAKAGES[breakage]
    change(docs, broken_secrets)
    problems = _k8s("production", docs, docker, entry, broken_secrets)
    assert any(expected in p for p in problems), problems


def _service(compose: dict, name: str) -> dict:
    return compose["services"][name]


COMPOSE_BREAKAGES: dict[str, tuple[Callable[[dict], None], str]] = {
    "web as root": (lambda c: _service(c, "web").__setitem__("user", "root"), "user 'root'"),
    "a worker as uid 0": (lambda c: _service(c, "worker").__setitem__("user", "0:0"), "user '0:0'"),
    "a required variable missing": (lambda c: _service(c, "worker").__setitem__(
        "environment", {k: v for k, v in _service(c, "worker")["environment"].items() if k != "FIELD_KEY"}),
        "FIELD_KEY is not provided"),
    "a secret that may be empty": (lambda c: _service(c, "web")["environment"].update(SECRET_KEY="${SECRET_KEY}"),
                                   "SECRET_KEY is not provided"),
    "a string command": (lambda c: _service(c, "worker").__setitem__("command", "portal worker"), "as a list"),
    "two schedulers": (lambda c: _service(c, "scheduler").__setitem__("deploy", {"replicas": 2}),
                       "2 processes enqueue"),
    "a worker that ticks": (lambda c: _service(c, "worker-heavy").__setitem__(
        "command", ["portal", "worker", "--queues", "intake_heavy"]), "2 processes enqueue"),
    "migrations from a folder the image lacks": (lambda c: _service(c, "migrate").__setitem__(
        "command", ["portal", "db", "upgrade", "--directory", "/migrations"]), "/migrations is not in the image"),
    "web before the migrations": (lambda c: _service(c, "web").__setitem__("depends_on", {"redis": {
        "condition": "service_healthy"}}), "does not wait for the migrations"),
    "local files instead of S3": (lambda c: _service(c, "worker").__setitem__("environment", {
        **_service(c, "worker")["environment"], "STORAGE_BACKEND": "local"}), "STORAGE_BACKEND=s3"),
}


@pytest.mark.parametrize("breakage", list(COMPOSE_BREAKAGES))
def test_a_broken_compose_file_is_refused(breakage, docker, entry):
    compose = copy.deepcopy(m.read_compose())
    change, expected = COMPOSE_BREAKAGES[breakage]
    change(compose)
    problems = _compose(compose, docker, entry)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("USER 10001:10001", "USER root", "numeric non-root"),
    ("USER 10001:10001", "USER 0", "numeric non-root"),
    ("tesseract-ocr-vie", "", "lacks tesseract-ocr-vie"),
    ("fonts-dejavu-core", "", "no fonts"),
    ("HEALTHCHECK", "# HEALTHCHECK", "no HEALTHCHECK"),
    ("MIGRATIONS_DIR=/app/migrations", "MIGRATIONS_DIR=/migrations", "MIGRATIONS_DIR (/migrations)"),
    ("COPY migrations ./migrations", "COPY migrations ./db", "MIGRATIONS_DIR (/app/migrations)"),
    ("      libmagic1 \\", "      libmagic1 build-essential \\", "build tools"),
])
def test_a_broken_dockerfile_is_refused(old, new, expected, tmp_path):
    text = (m.INFRA / "Dockerfile").read_text()
    assert old in text
    broken = tmp_path / "Dockerfile"
    broken.write_text(text.replace(old, new))
    problems = m.dockerfile_problems(m.read_dockerfile(broken))
    assert any(expected in p for p in problems), problems


def test_a_single_stage_dockerfile_is_refused(tmp_path):
    text = (m.INFRA / "Dockerfile").read_text()
    runtime = text[text.index("FROM ${PYTHON_IMAGE} AS runtime"):].replace("from=builder,", "")
    (tmp_path / "Dockerfile").write_text("ARG PYTHON_IMAGE=python:3.11-slim-bookworm\n" + runtime)
    assert any("multi-stage" in p for p in m.dockerfile_problems(m.read_dockerfile(tmp_path / "Dockerfile")))


def test_a_kustomization_naming_a_missing_file_or_a_root_patch_is_refused(tmp_path):
    tree = tmp_path / "k8s"
    shutil.copytree(m.K8S, tree)
    overlay = tree / "overlays" / "staging"
    k = m.kustomization(overlay)
    k["resources"].append("ghost.yaml")
    k["patches"].append({"target": {"kind": "Deployment", "name": "portal-web"},
                         "patch": "- op: replace\n  path: /spec/template/spec/securityContext/runAsUser\n  value: 0\n"})
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(k))
    assert any("ghost.yaml, which does not exist" in p for p in m.kustomization_file_problems(overlay))
    assert any("runAsUser = 0" in p for p in m.raw_file_problems(tree))
    (tree / "base" / "root.yaml").write_text("spec:\n  securityContext:\n    privileged: true\n")
    assert any("privileged = True" in p for p in m.raw_file_problems(tree))


def test_the_image_is_what_the_manifests_run(docker):
    """compose builds infra/Dockerfile as the image the kustomize base names; its user is the pods' user."""
    compose = m.read_compose()
    assert {s["image"].split(":")[0] for s in m.portal_services(compose).values()} == {m.IMAGE}
    base = m.build(m.K8S / "base")
    images = {c["image"] for d in base for c in m.containers(d)}
    assert images == {m.IMAGE}
    assert docker.uid() == 10001 and all(
        spec["securityContext"]["runAsUser"] == docker.uid() for d in base for spec in m.pod_specs(d))


def test_the_paths_the_image_copies_exist():
    docker = m.read_dockerfile()
    assert {"/app/wsgi.py", "/app/infra/gunicorn.conf.py", "/app/migrations"} <= set(docker.copied())
    assert all((m.ROOT / source).exists() for source in docker.copied().values())
    assert Path(m.ROOT / "infra" / "Dockerfile.dockerignore").read_text().count("!infra/gunicorn.conf.py") == 1
