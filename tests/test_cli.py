"""The `portal` command: tenants, users, demo data."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
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
            # Last month's statement, once: the Statements pages are not empty on a fresh portal.
            from portal.billing.models import Statement
            assert len(db.session.scalars(select(Statement)).all()) == 1
        db.session.rollback()


def _servers_of(instance: Path) -> list[str]:
    """The redis-server and postgres processes of ``instance`` (redis-server works in it; postgres names it)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if ("redis-server" in cmdline and proc.info["cwd"] == str(instance)) or \
                ("postgres" in cmdline and f"-D {instance}/" in cmdline):
            found.append(f"{proc.info['pid']} {cmdline}")
    return found


def _body(path: Path) -> str:
    from email import message_from_bytes, policy

    return message_from_bytes(path.read_bytes(), policy=policy.default).get_body().get_content()


def _end_servers(instance: Path) -> None:
    """Stop what a failed run left: PostgreSQL at once (SIGQUIT), Redis saving (SIGTERM); wait for both."""
    import psutil

    procs = []
    for server in _servers_of(instance):
        pid, command = server.split(" ", 1)
        with contextlib.suppress(psutil.NoSuchProcess):
            proc = psutil.Process(int(pid))
            proc.send_signal(signal.SIGTERM if "redis-server" in command else signal.SIGQUIT)
            procs.append(proc)
    psutil.wait_procs(procs, timeout=15)


@pytest.fixture
def instance() -> Iterator[Path]:
    """An instance folder outside pytest's (which pytest keeps at mode 0700, while the embedded
    PostgreSQL runs as its own user when we are root)."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="portal-dev-test-"))
    yield folder
    _end_servers(folder)
    shutil.rmtree(folder, ignore_errors=True)


def _output_of(proc) -> str:  # noqa: ANN001
    """What a failed ``portal dev`` printed. Its process group goes first: the worker and the embedded
    servers share its stdout, and reading a pipe they still hold would wait for ever."""
    import os

    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        return "(no output: a child still holds the pipe)"
    return (out or b"").decode(errors="replace")[-2000:]


def test_portal_dev_serves_and_a_sigterm_stops_it_with_its_worker(instance):
    """What `make run` runs (embedded PostgreSQL and Redis): it comes up, e-mails links to the port it
    serves, and stopping it (Ctrl+C, `kill`, a supervisor) leaves no worker and no server running."""
    import os
    import re
    import sys
    import time
    import urllib.request
    from urllib.parse import urlencode

    from tests.services import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in (
        "DATABASE_URL", "MIGRATION_DATABASE_URL", "REDIS_URL", "SMTP_URL", "BASE_URL", "PORTAL_ENV")}
    env.update(PORTAL_INSTANCE=str(instance), MAIL_OUTBOX_DIR=str(instance / "outbox"))
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
                assert proc.poll() is None, _output_of(proc)
                assert time.monotonic() < deadline, f"portal dev did not come up in 90 s: {_output_of(proc)}"
                time.sleep(0.5)
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert children, "no worker process beside the web process"
        servers = _servers_of(instance)
        assert any("redis-server" in s for s in servers) and any("postgres" in s for s in servers), servers

        # A password reset: the link is written by the web process and delivered by the worker.
        base = f"http://127.0.0.1:{port}"
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        page = browser.open(f"{base}/auth/reset", timeout=10).read().decode()
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        browser.open(f"{base}/auth/reset", timeout=10,
                     data=urlencode({"email": "admin@saigonbo.example", "csrf_token": token}).encode())
        deadline = time.monotonic() + 30
        while not (mails := [_body(m) for m in (instance / "outbox").glob("*.eml") if "reset" in _body(m)]):
            assert time.monotonic() < deadline, "the reset e-mail did not arrive in 30 s"
            time.sleep(0.5)
        assert f"{base}/auth/reset/" in mails[0], mails[0]

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        output = proc.stdout.read().decode()
        assert "admin@saigonbo.example" in output and base in output
        for pid in map(int, children):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            raise AssertionError(f"process {pid} (the worker) outlived portal dev")
        assert _servers_of(instance) == [], "embedded servers outlived portal dev"
    finally:  # whatever happened, nothing of this run is left behind (its own process group, its servers)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        _end_servers(instance)
