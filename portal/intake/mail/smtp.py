"""The SMTP receiver (aiosmtpd): RCPT only for a current intake address, 250 only once the message is kept.

aiosmtpd runs an asyncio loop in a thread of its own; the database and the vault are synchronous, so
each look-up and each delivery runs in a worker thread with an application context of its own.
Answers: 550 for an address that is not (or no longer) an intake address here, 552 (aiosmtpd) over
``INTAKE_MAIL_MAX_BYTES``, 451 when something failed on our side (the sending server tries again;
``receive.deliver`` makes that safe), 250 after the last commit.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from aiosmtpd.controller import Controller
from flask import Flask

log = logging.getLogger(__name__)

TRY_LATER = "451 4.3.0 The message could not be kept just now; please try again later"


class IntakeHandler:
    """aiosmtpd handler: ``handle_RCPT`` resolves each recipient to its tenant, ``handle_DATA`` delivers."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        try:
            tenant_id = await asyncio.get_running_loop().run_in_executor(None, self._resolve, address)
        except Exception:
            log.exception("intake address look-up failed")
            return "451 4.3.0 The address could not be looked up just now; please try again later"
        if tenant_id is None:
            return f"550 5.1.1 <{address}>: not an intake address here (it may have been replaced by a new one)"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        tenants = getattr(envelope, "intake_tenants", [])
        envelope.intake_tenants = [*tenants, tenant_id]
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        raw = envelope.original_content or b""
        loop = asyncio.get_running_loop()
        for tenant_id in dict.fromkeys(getattr(envelope, "intake_tenants", [])):  # each tenant once
            try:
                outcome = await loop.run_in_executor(None, self._deliver, tenant_id, raw)
            except Exception:
                log.exception("intake mail for tenant %s could not be kept", tenant_id)
                return TRY_LATER
            log.info("intake mail for tenant %s: %s (%d bytes)", tenant_id, outcome, len(raw))
        return "250 2.0.0 Message accepted"

    def _resolve(self, address: str) -> uuid.UUID | None:
        from portal.intake.mail.addresses import resolve

        with self.app.app_context():
            return resolve(address)

    def _deliver(self, tenant_id: uuid.UUID, raw: bytes) -> str:
        from portal.intake.mail.receive import deliver

        with self.app.app_context():
            return deliver(tenant_id, raw)


def controller(app: Flask, host: str | None = None, port: int | None = None) -> Controller:
    """A receiver for ``app`` on ``host:port`` (default ``INTAKE_SMTP_HOST``/``PORT``), not started yet."""
    cfg = app.config
    return Controller(IntakeHandler(app), hostname=host or cfg["INTAKE_SMTP_HOST"],
                      port=int(port or cfg["INTAKE_SMTP_PORT"]), data_size_limit=cfg["INTAKE_MAIL_MAX_BYTES"],
                      server_hostname=cfg["INTAKE_MAIL_DOMAIN"] or None, ident="portal mail-in")
