"""Build the production image and run it against real services: what parsing the Dockerfile cannot show.

    .venv/bin/python infra/check_image.py                    # docker or podman, whichever is here
    .venv/bin/python infra/check_image.py --stand-in-base    # no Docker Hub: a bookworm base from Debian's packages
    .venv/bin/python infra/check_image.py --base localhost/python:3.11-slim-bookworm-local   # that base again

``tests/infra/test_manifests.py`` checks the Dockerfile, the compose file and the manifests by reading them.
This builds ``infra/Dockerfile`` as it is and runs the image the way a deployment does, each container with
the host's network and a read-only root filesystem, one volume at ``/var/lib/portal`` shared by all of them:

1. the image: runs as uid 10001, holds no compiler, has Tesseract with English and Vietnamese, poppler, the
   compiled Vietnamese catalogue and a health check;
2. the migrations, as the one-shot command (``portal db upgrade``), against a new database on this machine's
   PostgreSQL (created like production's: an owner role and an application role without BYPASSRLS);
3. the web command (gunicorn): ``/healthz``, ``/readyz`` (database, Redis, S3, migrations at head), the sign-in
   page, ``/metrics`` refused without the token and answered with it, the image's own health check command;
4. a document uploaded with the CLI to S3 (a moto server on loopback, S3 and KMS: the tenant key wrapped by
   KMS) and read by a worker container and a scheduler container: a scanned invoice, read by OCR;
5. SIGTERM to each long-running container: each stops by itself, exit status 0, within its grace time.

Everything is removed afterwards (containers, the database, the Redis keys, the volume), also after a failure;
the image is kept (``--image`` names it). Exit status 1 when a check fails. Only loopback is used.

``--stand-in-base`` is for machines that cannot reach Docker Hub (this one: ``registry-1.docker.io`` does not
resolve): ``python:3.11-slim-bookworm`` is replaced by Debian bookworm (debootstrap, minbase) with Debian's own
Python 3.11 in a virtualenv on the PATH, and the machine's CA bundle (an HTTPS proxy may re-sign PyPI). The
Dockerfile is the same; only its ``PYTHON_IMAGE`` argument differs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the portal's own set-up and the tests' services, run from anywhere

from tests.processes import http_status  # noqa: E402
from tests.services import MotoServer, free_port, postgres_superuser_url, redis_url  # noqa: E402

STAND_IN = "localhost/python:3.11-slim-bookworm-local"
DATABASE = "portal_image_check"
REDIS_DB = 11
UID = 10001
results: list[tuple[str, bool, str]] = []


def check(name: str, ok: bool, detail: str = "") -> bool:
    """Record and print one check's outcome."""
    results.append((name, ok, detail))
    print(f"{'PASS' if ok else 'FAIL'}  {name}{': ' + detail if detail else ''}", flush=True)
    return ok


def sh(*args: str, check_rc: bool = True, timeout: float = 1800, **kwargs) -> subprocess.CompletedProcess:  # noqa: ANN003
    """Run a command, its output captured; with ``check_rc`` a failure ends the run with the output's tail."""
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)  # noqa: S603
    if check_rc and done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:4])}… failed ({done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
    return done


def runtime() -> str:
    """docker when its daemon answers, else podman."""
    if shutil.which("docker") and sh("docker", "info", check_rc=False, timeout=30).returncode == 0:
        return "docker"
    if shutil.which("podman"):
        return "podman"
    raise SystemExit("neither a docker daemon nor podman: install podman (Debian: apt-get install podman)")


def stand_in_base(engine: str, work: Path) -> str:
    """Debian bookworm from Debian's mirror with Python 3.11 on the PATH: ``python:3.11-slim-bookworm``'s shape."""
    rootfs = work / "rootfs"
    print("stand-in base: debootstrap bookworm (minbase)…", flush=True)
    sh("debootstrap", "--variant=minbase", "bookworm", str(rootfs), "http://deb.debian.org/debian")
    shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)  # noqa: S603, S607
    subprocess.run([engine, "import", "-", "localhost/debian-bookworm-minbase:local"], stdin=tar.stdout,  # noqa: S603
                   check=True, capture_output=True)
    tar.wait()
    context = work / "base"
    context.mkdir()
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", context / "ca-certificates.crt")
    (context / "Dockerfile").write_text(
        "FROM localhost/debian-bookworm-minbase:local\n"
        "COPY ca-certificates.crt /etc/ssl/certs/host-bundle.crt\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends python3.11 python3.11-venv"
        " ca-certificates && rm -rf /var/lib/apt/lists/* && python3.11 -m venv /usr/local/python\n"
        "ENV PATH=/usr/local/python/bin:$PATH LANG=C.UTF-8 PIP_CERT=/etc/ssl/certs/host-bundle.crt"
        " SSL_CERT_FILE=/etc/ssl/certs/host-bundle.crt\n"
        "RUN pip install --no-cache-dir --upgrade pip\n")
    print("stand-in base: Python 3.11…", flush=True)
    sh(engine, "build", "--network", "host", "-t", STAND_IN, str(context))
    return STAND_IN


def build(engine: str, image: str, base: str | None) -> None:
    """Build infra/Dockerfile as ``image`` (on ``base`` as its PYTHON_IMAGE, when given)."""
    args = [engine, "build", "--network", "host", "-f", "infra/Dockerfile", "-t", image]
    args += ["--format", "docker"] if engine == "podman" else []  # OCI images drop HEALTHCHECK
    args += ["--build-arg", f"PYTHON_IMAGE={base}"] if base else []
    print(f"building {image}…", flush=True)
    started = time.monotonic()
    sh(*args, ".", cwd=ROOT)
    check("the image builds from infra/Dockerfile", True, f"{time.monotonic() - started:.0f} s")


class Containers:
    """Containers of this run: host network, read-only root, the shared volume and the settings file."""

    def __init__(self, engine: str, image: str, volume: Path, env_file: Path) -> None:
        self.engine, self.image, self.volume, self.env_file = engine, image, volume, env_file
        self.names: list[str] = []

    def _args(self, name: str, extra: list[str]) -> list[str]:
        return [self.engine, "run", "--name", name, "--network", "host", "--read-only", "--tmpfs", "/tmp",  # noqa: S108 - the container's /tmp
                "-v", f"{self.volume}:/var/lib/portal", "--env-file", str(self.env_file), *extra, self.image]

    def once(self, name: str, *command: str, extra: list[str] | None = None) -> subprocess.CompletedProcess:
        """Run ``command`` to its end; its result."""
        self._claim(name)
        return sh(*self._args(name, extra or []), *command, check_rc=False, timeout=600)

    def start(self, name: str, *command: str, extra: list[str] | None = None) -> None:
        """Start ``command`` (the image's own when none) in the background."""
        self._claim(name)
        sh(*self._args(name, ["-d", *(extra or [])]), *command)

    def _claim(self, name: str) -> None:
        sh(self.engine, "rm", "-f", name, check_rc=False)  # one left by an interrupted run
        self.names.append(name)

    def logs(self, name: str) -> str:
        done = sh(self.engine, "logs", name, check_rc=False)
        return done.stdout + done.stderr

    def stop(self, name: str, grace: int = 30) -> tuple[int, float]:
        """SIGTERM, then SIGKILL after ``grace`` s; the exit status and how long it took."""
        started = time.monotonic()
        sh(self.engine, "stop", "-t", str(grace), name, check_rc=False, timeout=grace + 30)
        took = time.monotonic() - started
        state = sh(self.engine, "inspect", "--format", "{{.State.ExitCode}}", name, check_rc=False)
        return int(state.stdout.strip() or -1), took

    def remove(self) -> None:
        for name in self.names:
            sh(self.engine, "rm", "-f", name, check_rc=False)


def inspect_image(engine: str, image: str) -> None:
    """What the image holds: its user, no compiler, the OCR languages and tools, the catalogue, a health check."""
    probe = (
        "id -u; for c in gcc cc g++ make; do command -v $c; done; echo ---; tesseract --list-langs 2>&1 | tail -n +2;"
        " echo ---; command -v pdftoppm; command -v tini; python -c \"import portal, pathlib;"
        " print(*pathlib.Path(portal.__file__).parent.glob('translations/*/LC_MESSAGES/messages.mo'))\"")
    out = sh(engine, "run", "--rm", "--network", "host", "--entrypoint", "sh", image, "-c", probe).stdout
    first, langs, tools = (out.split("---\n") + ["", ""])[:3]
    uid, *compilers = first.split() or [""]
    check("runs as a non-root user", uid == str(UID), f"uid {uid}")
    check("no compiler or make in the image", not compilers, ", ".join(compilers) or "none")
    check("Tesseract reads English and Vietnamese", {"eng", "vie"} <= set(langs.split()), " ".join(langs.split()))
    check("poppler, tini and the compiled Vietnamese catalogue", all(
        w in tools for w in ("pdftoppm", "tini", "vi/LC_MESSAGES/messages.mo")), " ".join(tools.split()))
    test = health_check(engine, image)
    check("the image has a health check", bool(test), " ".join(test)[:100])


def health_check(engine: str, image: str) -> list[str]:
    """The image's HEALTHCHECK command (docker keeps it in Config, podman beside it)."""
    config = json.loads(sh(engine, "inspect", image).stdout)[0]
    health = config.get("Healthcheck") or (config.get("Config") or {}).get("Healthcheck") or {}
    return health.get("Test") or []


@contextlib.contextmanager
def services() -> Iterator[tuple[dict[str, str], str, MotoServer]]:
    """A new database (owner and application roles), an empty Redis database, moto (S3 and KMS): the portal's
    settings for them, the PostgreSQL superuser's URL and the moto server."""
    import psycopg
    from redis import Redis

    from portal.dbsetup import bootstrap

    superuser = postgres_superuser_url()
    urls = bootstrap(superuser, DATABASE, recreate=True)
    redis = redis_url(REDIS_DB)
    if Redis.from_url(redis).dbsize():
        raise SystemExit(f"Redis database {REDIS_DB} is not empty: another run is using it")
    moto = MotoServer()
    try:
        bucket = "portal-image-check"
        moto.client("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": moto.region})
        kms_key = moto.client("kms").create_key(Description="portal master")["KeyMetadata"]["KeyId"]
        yield ({"DATABASE_URL": urls.app, "MIGRATION_DATABASE_URL": urls.owner, "REDIS_URL": redis,
                **moto.env(), "STORAGE_BACKEND": "s3", "S3_BUCKET": bucket, "KMS_KEY_ID": kms_key}, superuser, moto)
    finally:
        moto.stop()
        Redis.from_url(redis).flushdb()
        with psycopg.connect(superuser, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{DATABASE}" with (force)')


def run_checks(engine: str, image: str, work: Path) -> None:
    """The image's contents, then its commands against real services (the module's docstring)."""
    from tests.data.invoices import samples

    inspect_image(engine, image)
    volume = work / "state"
    volume.mkdir(mode=0o700)
    shutil.chown(volume, UID, UID)
    with services() as (env, superuser, moto):
        port, token = free_port(), secrets.token_urlsafe(24)
        settings = {**env, "SECRET_KEY": secrets.token_urlsafe(48), "FIELD_KEY": _fernet_key(),
                    "BASE_URL": f"http://127.0.0.1:{port}", "PORT": f"127.0.0.1:{port}", "METRICS_TOKEN": token,
                    "WEB_CONCURRENCY": "2", "LOG_FORMAT": "json"}
        env_file = work / "portal.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        env_file.chmod(0o600)
        box = Containers(engine, image, volume, env_file)
        try:
            migrate = box.once("check-migrate", "portal", "db", "upgrade", "--directory", "/app/migrations")
            check("the migrations run as the one-shot command", migrate.returncode == 0,
                  (migrate.stdout + migrate.stderr).strip().splitlines()[-1][:120] if migrate.returncode else "")
            base = f"http://127.0.0.1:{port}"
            box.start("check-web")
            deadline = time.monotonic() + 90
            while http_status(base + "/healthz") != 200 and time.monotonic() < deadline:
                time.sleep(0.5)
            check("/healthz answers", http_status(base + "/healthz") == 200)
            check("/readyz: database, Redis, S3 and migrations at head", http_status(base + "/readyz") == 200,
                  _body(base + "/readyz").strip()[:160])
            check("the sign-in page", http_status(base + "/auth/login") == 200)
            check("/metrics refuses a request without the token", http_status(base + "/metrics") in (401, 403),
                  str(http_status(base + "/metrics")))
            metrics = _body(base + "/metrics", {"Authorization": f"Bearer {token}"})
            check("/metrics answers the token: request latency of the requests above",
                  bool(re.search(r'portal_http_request_duration_seconds_count\{endpoint="[\w.]*healthz"', metrics)),
                  f"{metrics.count(chr(10))} lines")
            probe = sh(engine, "exec", "check-web", *health_check(engine, image)[1:], check_rc=False)  # ["CMD", …]
            check("the image's health check passes in the web container", probe.returncode == 0)

            slug, scan = "image-check", samples(1)[0].scan(as_pdf=True)[0]
            (work / "in").mkdir()
            (work / "in" / "scan.pdf").write_bytes(scan)
            made = box.once("check-tenant", "portal", "tenants", "create", slug, "--name", "Kiểm tra ảnh")
            check("a tenant created with the CLI", made.returncode == 0, (made.stdout or made.stderr).strip()[-120:])
            upload = box.once("check-upload", "portal", "documents", "upload", "--tenant", slug, "--category",
                              "invoice", "/in/scan.pdf", extra=["-v", f"{work / 'in'}:/in:ro"])
            check("a scanned invoice uploaded with the CLI", upload.returncode == 0,
                  (upload.stdout or upload.stderr).strip()[-120:])
            box.start("check-worker", "portal", "worker", "--no-scheduler")
            box.start("check-scheduler", "portal", "scheduler")
            record = _wait_intake(superuser, slug, 240)
            check("a worker container reads it by OCR (intake done)", record[:2] == ("done", "ocr"),
                  f"state {record[0]}, text from {record[1]}, read as {record[2]}")
            objects = moto.client("s3").list_objects_v2(Bucket=env["S3_BUCKET"]).get("Contents", [])
            bodies = [moto.client("s3").get_object(Bucket=env["S3_BUCKET"], Key=o["Key"])["Body"].read()
                      for o in objects]
            check("S3 holds it encrypted", bool(bodies) and not any(b"%PDF" in b or scan[200:264] in b
                                                                    for b in bodies), f"{len(bodies)} objects")
            keys = sorted(p.name for p in (volume / "keys").rglob("*") if p.is_file())
            check("no master key on the volume (KMS wraps the tenant keys)", not any(k.startswith("master")
                                                                                    for k in keys))
            for name, grace in (("check-worker", 60), ("check-scheduler", 30), ("check-web", 30)):
                status, took = box.stop(name, grace)
                check(f"{name[6:]} stops on SIGTERM by itself", status == 0 and took < grace,
                      f"exit {status} in {took:.1f} s (grace {grace} s)")
        finally:
            if any(not ok for _, ok, _ in results):
                for name in box.names:
                    kept = work.parent / f"image-check-{name}.log"
                    kept.write_text(box.logs(name))
                    print(f"kept {kept}", flush=True)
            box.remove()


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _body(url: str, headers: dict[str, str] | None = None) -> str:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=10) as answer:
            return answer.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return f"{err.code} {err.read().decode(errors='replace')}"
    except OSError as err:
        return str(err)


def _wait_intake(superuser: str, slug: str, seconds: float) -> tuple[str, str, str]:
    """(state, text source, what it read as) of the tenant's one intake record, once finished or at the deadline."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    deadline, row = time.monotonic() + seconds, None
    with psycopg.connect(make_conninfo(superuser, dbname=DATABASE), autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("select r.state, coalesce(r.text_source, ''), coalesce(r.classified, '')"
                               " from intake_records r join tenants t on t.id = r.tenant_id where t.slug = %s",
                               (slug,)).fetchone()
            if row and row[0] in ("done", "failed"):
                break
            time.sleep(1)
    return tuple(row) if row else ("none", "", "")  # type: ignore[return-value]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", default="localhost/backoffice-portal:check")
    parser.add_argument("--stand-in-base", action="store_true", help="build the base from Debian's packages")
    parser.add_argument("--base", help=f"the PYTHON_IMAGE to build on (e.g. {STAND_IN}, made by an earlier run)")
    parser.add_argument("--no-build", action="store_true", help="check the image as it is")
    args = parser.parse_args()
    engine = runtime()
    work = Path(tempfile.mkdtemp(prefix="image-check-"))
    try:
        if not args.no_build:
            build(engine, args.image, stand_in_base(engine, work) if args.stand_in_base else args.base)
        run_checks(engine, args.image, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    failed = [name for name, ok, _ in results if not ok]
    print(f"\n{len(results) - len(failed)} of {len(results)} checks passed ({engine}, {args.image})")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
