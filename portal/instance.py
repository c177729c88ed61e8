"""Local secrets for the embedded default, created once under ``instance/`` with mode 0600."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet

from tenants.keyring import publish


def secret_file(path: Path, make: Callable[[], str]) -> str:
    """Read the secret at ``path``, creating it (0600) on first use.

    Processes starting side by side (gunicorn's workers, the rq worker) each load the app: the file appears
    whole or not at all (``keyring.publish``), and every one of them reads the one that won. Created empty
    and then written, a worker starting in between read an empty secret and failed every page it rendered.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        with contextlib.suppress(FileExistsError):  # another process published it first: its value stands
            publish(path, make().encode())
    return path.read_text().strip()


def fill_dev_secrets(cfg: dict) -> None:
    """Give SECRET_KEY and FIELD_KEY per-instance random values when they are unset."""
    instance = Path(cfg["INSTANCE_PATH"])
    if not cfg.get("SECRET_KEY"):
        cfg["SECRET_KEY"] = secret_file(instance / "secret_key", lambda: secrets.token_urlsafe(48))
    if not cfg.get("FIELD_KEY"):
        cfg["FIELD_KEY"] = secret_file(instance / "field.key", lambda: Fernet.generate_key().decode())
