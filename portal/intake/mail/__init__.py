"""E-mail in: each tenant's own intake address; mail from its registered senders goes into the vault like an
upload (and through intake), anything else waits in a quarantine for the client admin.

``addresses`` (the address, rotation, finding the tenant of an address), ``senders`` (who is registered),
``message`` (parsing and the sender checks), ``receive`` (stored or held), ``quarantine`` (release, drop,
the note on a document), ``smtp`` (the aiosmtpd receiver), ``views``/``api`` (pages and /api/v1),
``cli`` (``portal mail-in``, and the receiver ``portal dev`` starts on loopback).
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Map the tables, register the pages, panels, API endpoints and the ``portal mail-in`` command."""
    from portal.intake.mail import api, cli, models, views  # noqa: F401 - tables, routes, panels

    app.cli.add_command(cli.mail_in)
