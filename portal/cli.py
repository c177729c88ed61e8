"""The ``portal`` console script: the Flask CLI plus the portal's own commands."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import select

from portal.extensions import db


def _create_app() -> Flask:
    from portal import create_app
    from portal.config import ConfigError

    try:
        return create_app()
    except ConfigError as err:  # one line naming the variable, not a traceback
        raise SystemExit(f"portal: {err}") from None


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=True)
def main() -> None:
    """Back-office portal administration."""


# --- tenants ---------------------------------------------------------------------------

@click.group("tenants")
def tenants_cli() -> None:
    """Create, list and suspend client tenants."""


@tenants_cli.command("create")
@click.argument("slug")
@click.option("--name", required=True)
@click.option("--currency", default="VND", show_default=True)
@click.option("--timezone", "tz", default="Asia/Ho_Chi_Minh", show_default=True)
@click.option("--locale", default="vi", show_default=True)
@with_appcontext
def tenants_create(slug: str, name: str, currency: str, tz: str, locale: str) -> None:
    """Create a tenant."""
    from tenants.lifecycle import TenantError, create_tenant

    try:
        tenant = create_tenant(None, name=name, slug=slug, currency=currency, timezone=tz, locale=locale)
    except TenantError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"created {tenant.slug} ({tenant.name})")


@tenants_cli.command("list")
@with_appcontext
def tenants_list() -> None:
    """List tenants."""
    from tenants.models import Tenant

    for t in db.session.scalars(select(Tenant).order_by(Tenant.slug)):
        click.echo(f"{t.slug:30} {t.status:10} {t.currency} {t.timezone:20} {t.name}")


@tenants_cli.command("suspend")
@click.argument("slug")
@click.option("--undo", is_flag=True, help="Re-activate instead.")
@with_appcontext
def tenants_suspend(slug: str, undo: bool) -> None:
    """Suspend a tenant (its client users can no longer open it)."""
    from tenants.lifecycle import TenantError, set_status

    tenant = _tenant(slug)
    try:
        set_status(None, tenant, "active" if undo else "suspended")
    except TenantError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"{slug} is now {tenant.status}")


def _tenant(slug: str):  # noqa: ANN202
    from tenants.lifecycle import tenant_by_slug

    tenant = tenant_by_slug(slug)
    if tenant is None:
        raise click.ClickException(f"no tenant {slug!r}; see `portal tenants list`")
    return tenant


@tenants_cli.command("export")
@click.argument("slug")
@click.option("--out", "out", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Where to write the archive (default: <slug>-export.7z).")
@click.option("--by", "by_email", required=True, help="E-mail of the provider admin handing the data back.")
@with_appcontext
def tenants_export(slug: str, out: str | None, by_email: str) -> None:
    """Write everything the tenant owns to an encrypted 7z archive (mode 0600); prints its passphrase once.

    Clients take their own export from the Export page of their workspace; this is for handing it over
    by other means.
    """
    from pathlib import Path

    from portal.offboarding.export import export_to_file
    from tenants.context import for_tenant

    tenant, actor = _tenant(slug), _provider_admin(by_email)
    path = Path(out or f"{slug}-export.7z")
    with for_tenant(tenant.id, actor.id):
        files, passphrase = export_to_file(tenant, path, actor)
    click.echo(f"wrote {path}: {files} documents and the tables of requests, tasks, comments, approvals and the "
               f"access log, encrypted (7z, AES-256).\npassphrase (shown once, not kept): {passphrase}")


def _provider_admin(email: str):  # noqa: ANN202
    from portal.auth.services import user_by_email

    actor = user_by_email(email)
    if actor is None or actor.provider_role != "provider_admin" or not actor.is_active:
        raise click.ClickException("--by must be the e-mail of an active provider admin")
    return actor


@tenants_cli.command("offboard")
@click.argument("slug")
@click.option("--by", "by_email", required=True, help="E-mail of the provider admin offboarding the tenant.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--certificate", "cert_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Also write the deletion certificate to this file.")
@with_appcontext
def tenants_offboard(slug: str, by_email: str, yes: bool, cert_path: str | None) -> None:
    """Destroy the tenant's keys and delete its data (irreversible); certify it to the client.

    Run it again after a failure: it continues where it stopped.
    """
    from pathlib import Path

    from portal.offboarding.procedure import OffboardError, offboard

    tenant, actor = _tenant(slug), _provider_admin(by_email)
    if tenant.status == "offboarded":
        raise click.ClickException(f"{slug} was already offboarded")
    if not yes:
        click.echo(f"This destroys every document and all other data of {tenant.name} for good. Export it first: "
                   f"the client's Export page, or `portal tenants export {slug} --by {by_email}`.")
        typed = click.prompt(f"Type the tenant's short name ({slug}) to confirm", default="", show_default=False)
        if typed.strip() != slug:
            raise click.ClickException("not confirmed; nothing was changed")
    try:
        result = offboard(tenant, actor, via="from the command line")
    except OffboardError as err:
        raise click.ClickException(str(err)) from err
    if result.certificate is None:
        click.echo(f"{slug} was offboarded on {result.record.finished_at:%Y-%m-%d}; its certificate was e-mailed "
                   "then.")
        return
    if cert_path:
        Path(cert_path).write_text(result.certificate, encoding="utf-8")
    click.echo(result.certificate)


# --- documents and keys ------------------------------------------------------------------

@click.group("documents")
def documents_cli() -> None:
    """Bulk-import documents into a tenant's vault; find and remove objects no document names."""


@documents_cli.command("upload")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--tenant", "slug", required=True)
@click.option("--category", default="other", show_default=True)
@click.option("--period", default=None, help="Month, YYYY-MM.")
@click.option("--tags", default=None, help="Comma-separated.")
@with_appcontext
def documents_upload(files: tuple[str, ...], slug: str, category: str, period: str | None,
                     tags: str | None) -> None:
    """Upload files (streamed, sniffed, encrypted) as the system; prints one result per file."""
    from pathlib import Path

    from portal.documents import services
    from portal.documents.custody import system_scope

    tenant = _tenant(slug)
    if not tenant.is_active:
        raise click.ClickException(f"{slug} is {tenant.status}; documents can only go into an active tenant")
    failed = 0
    with system_scope(tenant):
        try:
            target = services.upload_target(None, category=category, period=period, tags=tags)
        except services.DocumentError as err:
            raise click.ClickException(str(err)) from err
        for name in files:
            path = Path(name)
            with path.open("rb") as handle:
                result = services.upload(None, tenant, iter(lambda h=handle: h.read(1 << 20), b""),
                                         filename=path.name, target=target)
            failed += not result.ok
            click.echo(f"{result.status:9} {path}: {result.message}")
    if failed:
        raise SystemExit(1)


@documents_cli.command("orphans")
@click.option("--remove", is_flag=True, help="Delete them (without it: only report).")
@click.option("--older-than", "hours", type=click.IntRange(min=1), default=24, show_default=True,
              help="Hours an object must have been in storage before it counts (an upload writes it first).")
@click.option("--force", is_flag=True, help="Remove even when they are more than 5% of the store.")
@with_appcontext
def documents_orphans(remove: bool, hours: int, force: bool) -> None:
    """Objects in storage that no catalogue row names (a crash between the write and the commit).

    Exit 1 when there are some and they were not removed.
    """
    from datetime import timedelta

    from portal.documents.orphans import SweepRefused, sweep

    try:
        found = sweep(remove=remove, force=force, grace=timedelta(hours=hours))
    except SweepRefused as err:
        raise click.ClickException(str(err)) from err
    for item in found.orphans:
        kind = "temporary file" if item.temporary else "object"
        click.echo(f"{'removed' if found.removed else 'orphan '} {kind} {item.key} ({item.size} bytes, "
                   f"written {item.modified:%Y-%m-%d %H:%M} UTC)")
    click.echo(f"{found.objects} objects in storage; {len(found.orphans)} named by no document and older than "
               f"{hours} h ({found.orphan_bytes} bytes), {found.young} younger")
    if remove:
        click.echo(f"{found.removed} removed")
    elif found.orphans:
        click.echo("report only: --remove deletes them")
    if found.orphans and not found.removed:
        raise SystemExit(1)


@click.group("statements")
def statements_cli() -> None:
    """Monthly statements."""


@statements_cli.command("run")
@click.option("--month", required=True, help="The month to bill, YYYY-MM.")
@click.option("--tenant", "slug", default=None, help="Only this tenant (its short name).")
@with_appcontext
def statements_run(month: str, slug: str | None) -> None:
    """Issue the month's statements (once: a tenant whose statement is issued is left as it is)."""
    from portal.billing.statements import run_month
    from portal.work.kpi import BadMonth, Month

    try:
        wanted = Month.parse(month, Month(2026, 1))
    except BadMonth as err:
        raise click.BadParameter(str(err), param_hint="--month") from err
    if slug:
        _tenant(slug)  # a clear error for a short name that does not exist
    outcomes = run_month(wanted, slug)
    for outcome in outcomes:
        click.echo(f"{outcome.state:8} {outcome.tenant_id} {outcome.error or ''}".rstrip())
    if any(o.state == "failed" for o in outcomes):
        raise SystemExit(1)


@click.group("keys")
def keys_cli() -> None:
    """Rotate tenant keys and the master key; check a restored key directory."""


@keys_cli.command("rotate")
@click.option("--tenant", "slug", required=True)
@click.option("--retire-only", is_flag=True, help="Only retire old versions a previous rotation left pending.")
@with_appcontext
def keys_rotate(slug: str, retire_only: bool) -> None:
    """New tenant key version; re-wrap every data key (objects are not rewritten); retire the old."""
    from portal.documents.custody import RotationBusy, retire_unused, rotate_tenant_key, system_scope

    tenant = _tenant(slug)
    if retire_only:
        with system_scope(tenant):
            _count, retired, pending = retire_unused(tenant)
        click.echo(f"{slug}: retired versions: {', '.join(map(str, retired)) or 'none'}"
                   + (f"; still in use by uploads in progress: {', '.join(map(str, pending))}" if pending else ""))
        return
    try:
        result = rotate_tenant_key(tenant)
    except RotationBusy as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"{slug}: now {result.new.key_id} v{result.new.version}; {result.rewrapped} data keys re-wrapped; "
               f"retired versions: {', '.join(map(str, result.retired)) or 'none'}")
    if result.pending:
        click.echo(f"versions {', '.join(map(str, result.pending))} stay until the uploads in progress finish: "
                   f"run `portal keys rotate --tenant {slug} --retire-only` later")


@keys_cli.command("rotate-signing")
@with_appcontext
def keys_rotate_signing() -> None:
    """A new signing key for certificates and audit checkpoints; the old ones keep verifying what they signed."""
    from tenants.keyring import app_keyring
    from tenants.signing import key_id

    click.echo(f"now signing with {key_id(app_keyring().rotate_signing())}; publish /keys again if you copy it")


@keys_cli.command("rotate-master")
@click.option("--kms-key-id", default=None, help="With KMS: the new KMS key to wrap tenant keys under.")
@with_appcontext
def keys_rotate_master(kms_key_id: str | None) -> None:
    """Re-wrap every tenant key under a new master key."""
    from portal.documents.custody import rotate_master

    click.echo(f"re-wrapped {rotate_master(kms_key_id)} tenant keys under the new master key")


@keys_cli.command("verify-restore")
@click.option("--dry-run", is_flag=True, help="Only report shredded keys the key directory holds again.")
@click.option("--tenant", "slugs", multiple=True, help="Sample only this tenant's objects (repeatable).")
@with_appcontext
def keys_verify_restore(dry_run: bool, slugs: tuple[str, ...]) -> None:
    """After a restore, before serving: destroy again the shredded keys it brought back; open a sample.

    Exit 1 if a live tenant's object does not open, or a shredded-key record cannot be verified.
    """
    from portal.trust.shredding import verify_restore

    tenant_ids = {_tenant(slug).id for slug in slugs} or None
    result = verify_restore(dry_run=dry_run, tenant_ids=tenant_ids)
    for entry in result.restored:
        done = "would destroy again" if dry_run else "destroyed again"
        click.echo(f"RESTORED SHREDDED KEY {entry.name} (tenant:{entry.tenant_id}, destroyed on "
                   f"{entry.destroyed_at[:10]}, per {', '.join(entry.sources)}): {done}", err=True)
    for item in result.unreadable:
        click.echo(f"UNREADABLE {item.tenant} {item.key} object {item.object_id}: {item.reason}", err=True)
    for problem in result.problems:
        click.echo(f"PROBLEM {problem}", err=True)
    click.echo(f"{len(result.shredded)} shredded tenant keys, {len(result.restored)} of them brought back by the "
               f"restore{' (dry run)' if dry_run else ' and destroyed again'}; {result.objects_opened} objects "
               f"opened, {len(result.unreadable)} unreadable")
    if result.unreadable or result.problems or (dry_run and result.restored):
        sys.exit(1)


# --- users ---------------------------------------------------------------------------

@click.group("users")
def users_cli() -> None:
    """Create provider admins and invite users."""


@users_cli.command("create-admin")
@click.argument("email")
@click.option("--name", required=True)
@click.password_option()
@with_appcontext
def users_create_admin(email: str, name: str, password: str) -> None:
    """Create a provider admin with a password (second factor enrolled at first sign-in)."""
    from portal.auth.passwords import hash_password, weakness
    from portal.auth.services import normalise_email, user_by_email
    from tenants import audit
    from tenants.models import User

    if user_by_email(email):
        raise click.ClickException(f"{email} already has an account")
    problem = weakness(password, email)
    if problem:
        raise click.ClickException(problem)
    user = User(email=normalise_email(email), name=name, provider_role="provider_admin",
                password_hash=hash_password(password))
    db.session.add(user)
    db.session.flush()
    audit.record("user.created", audit.SYSTEM, object_type="user", object_id=user.id,
                 data={"email": user.email, "role": "provider_admin", "via": "cli"})
    db.session.commit()
    click.echo(f"created provider admin {user.email}")


@users_cli.command("invite")
@click.argument("email")
@click.option("--name", default="")
@click.option("--role", required=True,
              type=click.Choice(["provider_admin", "manager", "staff", "client_admin", "client_approver",
                                 "client_member"]))
@click.option("--tenant", "slug", help="Tenant slug (for client roles).")
@click.option("--by", "by_email", required=True, help="E-mail of the provider admin sending the invite.")
@with_appcontext
def users_invite(email: str, name: str, role: str, slug: str | None, by_email: str) -> None:
    """E-mail a single-use invite link."""
    from portal.auth.services import AuthError, invite, user_by_email, with_tenant
    from tenants.lifecycle import tenant_by_slug
    from tenants.policy import CLIENT_ROLES, Role

    actor = user_by_email(by_email)
    if actor is None or actor.provider_role != "provider_admin":
        raise click.ClickException("--by must be a provider admin")
    client = Role(role) in CLIENT_ROLES
    tenant = tenant_by_slug(slug) if slug else None
    if client and tenant is None:
        raise click.ClickException("client roles need --tenant with an existing tenant slug")
    try:
        if client:
            with with_tenant(actor.id, tenant):
                invite(actor, email, name, role=Role(role), tenant=tenant, ip=None)
        else:
            invite(actor, email, name, role=Role(role), tenant=None, ip=None)
    except AuthError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"invited {email} as {role}")


# --- audit ---------------------------------------------------------------------------

@click.group("audit")
def audit_cli() -> None:
    """The hash-chained audit log."""


@audit_cli.command("verify")
@click.option("--no-checkpoint", is_flag=True, help="Only check, write no checkpoint (a restore drill's copy).")
@with_appcontext
def audit_verify(no_checkpoint: bool) -> None:
    """Check every chain row by row and against every signed checkpoint; exit 1 and list what is wrong.

    When nothing is wrong, the heads are checkpointed again (signed, to object storage).
    """
    from portal.trust.anchors import verify

    result = verify(checkpoint=not no_checkpoint)
    for p in result.problems:
        click.echo(f"TAMPERED {p}", err=True)
    if result.problems:
        sys.exit(1)
    click.echo(f"audit log intact: {result.checkpoints_checked} signed checkpoints agree with the database; "
               f"{result.checkpointed_now} chain heads checkpointed now")


@audit_cli.command("checkpoint")
@with_appcontext
def audit_checkpoint() -> None:
    """Sign the head of every chain that moved since its last checkpoint and store it (the scheduler does this)."""
    from portal.trust.anchors import write_checkpoints

    click.echo(f"{write_checkpoints()} chain heads checkpointed")


# --- data ----------------------------------------------------------------------------

@click.group("data")
def data_cli() -> None:
    """The data at rest."""


@data_cli.command("seal")
@with_appcontext
def data_seal() -> None:
    """Seal, with each tenant's key, the free text written before its column was sealed (idempotent)."""
    from tenants.context import for_tenant
    from tenants.fields import seal_legacy_values
    from tenants.models import LIVE_STATUSES, Tenant

    total = 0
    for tenant in db.session.scalars(select(Tenant).where(Tenant.status.in_(LIVE_STATUSES))).all():
        with for_tenant(tenant.id):
            sealed = seal_legacy_values(db.session, tenant.id)
            db.session.commit()
        total += sealed
        if sealed:
            click.echo(f"{tenant.slug}: {sealed} values sealed")
    click.echo(f"{total} values sealed")


# --- certificates --------------------------------------------------------------------

@click.group("certificates")
def certificates_cli() -> None:
    """Signed certificates (deletion certificates)."""


@certificates_cli.command("verify")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@with_appcontext
def certificates_verify(path: str) -> None:
    """Check that a certificate file was signed by this portal and is unchanged; print what it states."""
    from pathlib import Path

    from portal.trust.certificates import NotACertificate, check
    from tenants.signing import BadSignature

    try:
        statement = check(Path(path).read_text(encoding="utf-8", errors="replace"))
    except (NotACertificate, BadSignature) as err:
        click.echo(f"NOT VALID: {err}", err=True)
        sys.exit(1)
    click.echo("valid: signed by this portal and unchanged")
    for key, value in sorted(statement.items()):
        click.echo(f"  {key}: {value}")


# --- running -------------------------------------------------------------------------

@click.command("worker")
@click.option("--queues", default="", help="Comma-separated, in priority order (default: RQ_QUEUES, every queue).")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--scheduler/--no-scheduler", default=True, show_default=True,
              help="Also enqueue the periodic jobs (what `portal scheduler` does). A deployment runs one "
                   "`portal scheduler` and starts every worker with --no-scheduler.")
@with_appcontext
def worker(queues: str, burst: bool, scheduler: bool) -> None:
    """Run an rq worker (JSON serializer) with the outbox relay and reaper beside it.

    SIGTERM: the job in progress finishes, the relay loop ends its round, and the worker exits 0 (a second
    SIGTERM interrupts the job; the outbox's reaper queues it again).
    """
    from rq.serializers import JSONSerializer

    from portal import logs, metrics
    from portal.heap import freeze_loaded_app
    from workers import reap, recover_abandoned, redis_connection, relay
    from workers.runner import PortalWorker
    from workers.schedule import tick

    app = current_app._get_current_object()
    stop = threading.Event()

    def relay_loop() -> None:
        while not stop.wait(5):
            with app.app_context():
                try:
                    if scheduler:
                        tick()
                except Exception:  # the periods are given back for the next tick; relaying goes on
                    app.logger.exception("scheduler tick")
                try:
                    relay()
                    reap()
                    recover_abandoned(names)
                except Exception:  # keep relaying; the error is logged
                    app.logger.exception("relay loop")
            # rq's scheduler (it queues the retries of failed jobs when their back-off ends) runs in a process
            # of its own, which a Redis restart ends; rq starts it again only at its next maintenance, up to
            # ten minutes on (tests/load: jobs waited that long). Taking its locks again starts it.
            # Never once the worker is stopping (SIGTERM): rq stopped its scheduler on purpose, and one started
            # now would outlive the worker and keep it from exiting.
            rq_scheduler = getattr(w, "scheduler", None)
            if stop.is_set() or getattr(w, "_stop_requested", False):
                continue
            if rq_scheduler is not None and not (rq_scheduler._process and rq_scheduler._process.is_alive()):
                try:
                    rq_scheduler.acquire_locks(auto_start=True)
                except Exception:  # Redis still down: the next round tries again
                    app.logger.warning("rq scheduler not restarted yet", exc_info=True)

    logs.configure(("rq",), app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])  # rq's lines as JSON too
    if app.config["WORKER_METRICS_PORT"]:
        metrics.serve(app, app.config["WORKER_METRICS_PORT"])
    with app.app_context():
        relay()
    names = [q.strip() for q in queues.split(",") if q.strip()] or list(current_app.config["RQ_QUEUES"])
    w = PortalWorker(names, connection=redis_connection(),
                     serializer=JSONSerializer)
    relay_thread = threading.Thread(target=relay_loop, name="relay", daemon=True)
    relay_thread.start()
    freeze_loaded_app()  # jobs run in this process (SimpleWorker): the app out of full collections' sight
    try:
        w.work(burst=burst, with_scheduler=True)
    finally:
        stop.set()
        relay_thread.join(30)  # a round in progress commits (or rolls back) before the process ends
        # An rq scheduler the relay loop started as rq was stopping its own would keep this process from exiting
        # (multiprocessing waits for its children) and hold its output open.
        leftover = getattr(getattr(w, "scheduler", None), "_process", None)
        if leftover is not None and leftover.is_alive():
            leftover.terminate()
            leftover.join(5)


@click.command("scheduler")
@click.option("--interval", default=5.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds between ticks.")
@click.option("--once", is_flag=True, help="Tick once and exit.")
@with_appcontext
def scheduler(interval: float, once: bool) -> None:
    """Enqueue the periodic jobs (workers/schedule.py) as their periods come; a deployment runs exactly one.

    Two at once (a rolling update) still enqueue each period once: every period is claimed in the database.
    SIGTERM stops it between two ticks.
    """
    from workers.schedule import tick

    app = current_app._get_current_object()
    stop = threading.Event()
    if not once:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        app.logger.info("scheduler: a tick every %s s", interval)
    while True:
        with app.app_context():
            try:
                count = tick()
            except Exception:  # the tick's periods are given back; the next tick enqueues them
                app.logger.exception("scheduler tick")
                if once:
                    raise SystemExit(1) from None
            else:
                if once:
                    click.echo(f"{count} periodic jobs enqueued")
                    return
        if stop.wait(interval):
            return


@click.command("demo")
@with_appcontext
def demo() -> None:
    """Load the demo provider, staff, two client tenants and their users (idempotent)."""
    from portal.demo import load, print_logins

    print_logins(load())


@click.command("dev")
@click.option("--port", default=5000, show_default=True)
def dev(port: int) -> None:
    """Set everything up (database, migrations, demo data), start a worker and serve on 127.0.0.1."""
    from flask_migrate import upgrade
    from werkzeug.serving import run_simple

    from portal import create_app, logs
    from portal.demo import load, print_logins

    # E-mailed links name the server actually served, unless BASE_URL says otherwise.
    app = create_app(None if os.environ.get("BASE_URL") else {"BASE_URL": f"http://127.0.0.1:{port}"})
    with app.app_context():
        upgrade()
        logins = load()
    logs.init_app(app)  # alembic's env.py ran logging.config.fileConfig, which switched our loggers off
    logs.configure(("werkzeug",), "INFO")  # its request lines as JSON too (link tokens scrubbed)
    env = dict(os.environ, DATABASE_URL=app.config["DATABASE_URL"],
               MIGRATION_DATABASE_URL=app.config["MIGRATION_DATABASE_URL"], REDIS_URL=app.config["REDIS_URL"],
               BASE_URL=app.config["BASE_URL"])
    worker_proc = subprocess.Popen([sys.executable, "-m", "portal.cli", "worker"], env=env)
    print_logins(logins)
    from portal.intake.mail.cli import start_dev_receiver

    mail_in = start_dev_receiver(app)  # e-mail in: an SMTP receiver on loopback, beside the web process
    click.echo(f"\n  Portal: http://127.0.0.1:{port}   (Ctrl+C stops it and the worker)\n")
    # SIGTERM (timeout, a supervisor, `kill`) must stop the worker and the embedded services as Ctrl+C
    # does: by default it ends the process at once and would leave both running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        # Werkzeug directly: app.run() refuses to block inside a Flask CLI command.
        run_simple("127.0.0.1", port, app, threaded=True, use_reloader=False)
    finally:
        if mail_in is not None:
            mail_in.stop()
        worker_proc.send_signal(signal.SIGTERM)
        try:
            worker_proc.wait(10)
        except subprocess.TimeoutExpired:
            worker_proc.kill()
        from portal import embedded

        embedded.stop()


def init_app(app: Flask) -> None:
    for command in (tenants_cli, users_cli, audit_cli, certificates_cli, data_cli, documents_cli, keys_cli,
                    statements_cli, worker, scheduler, demo, dev):
        app.cli.add_command(command)


if __name__ == "__main__":
    main()
