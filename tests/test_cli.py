"""The `portal` command: tenants, users, demo data."""

from __future__ import annotations

from sqlalchemy import select

from portal.extensions import db
from tenants.lifecycle import tenant_by_slug
from tenants.models import Membership, User
from tests.factories import unique


def run(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def test_tenants_create_list_suspend(app, ctx):
    slug = unique("cli")
    result = run(app, "tenants", "create", slug, "--name", "Công ty CLI", "--currency", "USD")
    assert result.exit_code == 0, result.output
    assert slug in run(app, "tenants", "list").output
    bad = run(app, "tenants", "create", slug, "--name", "Again")
    assert bad.exit_code != 0 and "taken" in bad.output
    assert run(app, "tenants", "suspend", slug).exit_code == 0
    db.session.expire_all()
    assert tenant_by_slug(slug).status == "suspended"
    assert run(app, "tenants", "suspend", slug, "--undo").exit_code == 0
    assert "no tenant" in run(app, "tenants", "suspend", "missing-tenant").output


def test_create_admin_then_invite_a_client_admin(app, ctx, smtp, run_jobs):
    admin_email = f"{unique('root')}@example.test"
    result = run(app, "users", "create-admin", admin_email, "--name", "Root", "--password", "a long admin password")
    assert result.exit_code == 0, result.output
    slug = unique("cli")
    run(app, "tenants", "create", slug, "--name", "Invited Co")
    invitee = f"{unique('boss')}@example.test"
    result = run(app, "users", "invite", invitee, "--role", "client_admin", "--tenant", slug, "--by", admin_email)
    assert result.exit_code == 0, result.output
    run_jobs()
    [mail] = smtp.to(invitee)
    assert "/auth/invite/" in mail.get_content() and "Invited Co" in mail["Subject"]
    user = db.session.scalars(select(User).where(User.email == invitee)).one()
    assert db.session.scalars(select(Membership).where(Membership.user_id == user.id)
                              .execution_options(rls_only=True)).all() == []  # nothing bound: RLS hides it
    refused = run(app, "users", "invite", f"{unique('x')}@example.test", "--role", "client_member",
                  "--by", admin_email)
    assert refused.exit_code != 0 and "--tenant" in refused.output


def test_demo_is_idempotent_and_prints_every_login(app, ctx):
    first = run(app, "demo")
    second = run(app, "demo")
    assert first.exit_code == second.exit_code == 0
    for email in ("admin@saigonbo.example", "giamdoc@hoasen.example", "office@northwind.example"):
        assert email in second.output
    assert db.session.scalars(select(User).where(User.email == "admin@saigonbo.example")).one()
    # Work to look at in every demo tenant, made once however often the demo runs.
    from portal.work.models import Task, TaskTemplate
    from tenants.context import for_tenant
    from tenants.lifecycle import tenant_by_slug

    for slug in ("hoa-sen-trading", "northwind-vn"):
        with for_tenant(tenant_by_slug(slug).id):
            manual = db.session.scalars(select(Task).where(Task.source == "manual")).all()
            assert len(manual) == 4 and {t.service_line.key for t in manual} == {"admin", "payroll", "bookkeeping",
                                                                                 "data_entry"}
            assert sum(t.assignee_id is None for t in manual) == 3  # waiting in the team queues
            assert len(db.session.scalars(select(TaskTemplate)).all()) == 2
        db.session.rollback()


def test_portal_dev_serves_and_a_sigterm_stops_it_with_its_worker(app, tmp_path):
    """What `make run` runs: it comes up, and stopping it (Ctrl+C, `kill`, a supervisor) leaves no worker."""
    import contextlib
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    from tests.services import free_port

    port = free_port()
    cfg = app.config
    env = dict(os.environ, PORTAL_INSTANCE=str(tmp_path), DATABASE_URL=cfg["DATABASE_URL"],
               MIGRATION_DATABASE_URL=cfg["MIGRATION_DATABASE_URL"], REDIS_URL=cfg["REDIS_URL"],
               SECRET_KEY=cfg["SECRET_KEY"], FIELD_KEY=cfg["FIELD_KEY"] or "", KEY_DIR=cfg["KEY_DIR"],
               STORAGE_DIR=cfg["STORAGE_DIR"], MAIL_OUTBOX_DIR=str(tmp_path / "outbox"))
    proc = subprocess.Popen([sys.executable, "-m", "portal.cli", "dev", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
                assert time.monotonic() < deadline, "portal dev did not come up in 90 s"
                time.sleep(0.5)
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert children, "no worker process beside the web process"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        output = proc.stdout.read().decode()
        assert "admin@saigonbo.example" in output and f"http://127.0.0.1:{port}" in output
        for pid in map(int, children):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            raise AssertionError(f"process {pid} (the worker) outlived portal dev")
    finally:  # whatever happened, nothing of this run is left behind (its own process group)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
