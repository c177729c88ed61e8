"""``portal mail-in`` (the receiver in production) and the receiver ``portal dev`` runs on loopback."""

from __future__ import annotations

import signal
import threading

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from portal.extensions import db


@click.command("mail-in")
@click.option("--host", default=None, help="Address to listen on (default INTAKE_SMTP_HOST, 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port to listen on (default INTAKE_SMTP_PORT, 2525).")
@with_appcontext
def mail_in(host: str | None, port: int | None) -> None:
    """Receive the tenants' intake mail over SMTP until stopped (SIGTERM or Ctrl+C).

    Put it behind the mail server that receives for INTAKE_MAIL_DOMAIN (docs/architecture.md): that server
    checks SPF, DKIM and DMARC and relays to this port, which should not be reachable from the internet.
    """
    from portal.intake.mail.smtp import controller

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if not app.config["INTAKE_MAIL_DOMAIN"]:
        raise click.ClickException("set INTAKE_MAIL_DOMAIN (the domain of the intake addresses) first")
    receiver = controller(app, host, port)
    receiver.start()
    click.echo(f"receiving mail for *@{app.config['INTAKE_MAIL_DOMAIN']} on {receiver.hostname}:{receiver.port} "
               "(Ctrl+C stops)")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(3600):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()


def start_dev_receiver(app: Flask):  # noqa: ANN201 - an aiosmtpd Controller, or None
    """Start the receiver on loopback for ``portal dev``, giving every live tenant an address; print how to use it.

    A port already in use is said, not fatal: the portal itself still starts. Nothing when mail-in is off.
    """
    if not app.config["INTAKE_MAIL_DOMAIN"]:
        return None
    from portal.intake.mail import addresses
    from portal.intake.mail.smtp import controller
    from tenants.context import for_tenant
    from tenants.models import Tenant

    receiver = controller(app, "127.0.0.1")
    try:
        receiver.start()
    except (OSError, RuntimeError) as err:
        click.echo(f"\n  E-mail in: not started ({err}); set INTAKE_SMTP_PORT to a free port.")
        return None
    with app.app_context():
        lines = []
        for tenant in db.session.scalars(select(Tenant).where(Tenant.status == "active").order_by(Tenant.slug)).all():
            with for_tenant(tenant.id):
                row = addresses.current(tenant)
                address = addresses.address_of(row) if row else addresses.rotate(None, tenant)
            lines.append(f"    {tenant.name[:40]:40} {address}")
    click.echo(f"\n  E-mail in: SMTP on 127.0.0.1:{receiver.port}; mail a PDF from a client user's address to its "
               "workspace's address (also on its Documents page):\n" + "\n".join(lines))
    return receiver
