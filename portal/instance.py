"""Local secrets for the embedded default, created once under ``instance/`` with mode 0600."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet


def secret_file(path: Path, make: Callable[[], str]) -> str:
    """Read the secret at ``path``, creating it (0600, exclusively) on first use."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        value = make()
        fh.write(value)
    return value


def fill_dev_secrets(cfg: dict) -> None:
    """Give SECRET_KEY and FIELD_KEY per-instance random values when they are unset."""
    instance = Path(cfg["INSTANCE_PATH"])
    if not cfg.get("SECRET_KEY"):
        cfg["SECRET_KEY"] = secret_file(instance / "secret_key", lambda: secrets.token_urlsafe(48))
    if not cfg.get("FIELD_KEY"):
        cfg["FIELD_KEY"] = secret_file(instance / "field.key", lambda: Fernet.generate_key().decode())
