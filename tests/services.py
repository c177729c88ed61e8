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
