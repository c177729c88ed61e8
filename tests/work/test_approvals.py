"""Client approvals: the approval is of exactly one version; a changed work product voids it."""

from __future__ import annotations

import io
import re

from tests.api.util import bearer, issue_token
from tests.documents import samples
from tests.factories import csrf_token, login


def _upload(client, world, body: bytes, name: str, **fields) -> str:
    url = f"/t/{world.a.slug}/documents"
    r = client.post(url + "/upload", headers={"Accept": "application/json"},
                    data={"csrf_token": csrf_token(client, url), "category": "other", **fields,
                          "file": [(io.BytesIO(body), name)]})
    return r.json["results"][0]["url"].rsplit("/", 1)[1]


def _post(client, url: str, **data):
    return client.post(url, data={"csrf_token": csrf_token(client, url.rsplit("/", 1)[0]), **data})


def test_an_approval_stops_counting_when_the_work_product_changes(app, world, run_jobs):
    manager, staff, approver = (app.test_client() for _ in range(3))
    login(manager, world["manager"])
    login(staff, world["staff"])
    login(approver, world["a_client_approver"])
    tasks = f"/t/{world.a.slug}/tasks"
    r = manager.post(tasks, data={"csrf_token": csrf_token(manager, tasks), "title": "March payroll run",
                                  "line": "payroll", "assignee": str(world["staff"].id),
                                  "reviewer": str(world["manager"].id)})
    task = r.headers["Location"]
    payslips = _upload(staff, world, samples.pdf(6060), "payroll-march.pdf")
    _post(staff, task + "/product", document=payslips)
    for client, move in ((staff, "start"), (staff, "submit"), (manager, "approve")):
        assert _post(client, task + "/move", move=move).status_code == 302

    inbox = approver.get(f"/t/{world.a.slug}/approvals").get_data(as_text=True)
    assert "March payroll run" in inbox and "payroll-march.pdf" in inbox
    seen = re.search(r'name="seen_sha256" value="([0-9a-f]{64})"', inbox).group(1)
    # Approving a version other than the current one (a stale page) is refused.
    r = _post(approver, task + "/move", move="client_approve", seen_sha256="0" * 64)
    assert r.status_code == 409 and "changed since you opened it" in r.get_data(as_text=True)
    assert _post(approver, task + "/move", move="client_approve", seen_sha256=seen).status_code == 302
    page = approver.get(task).get_data(as_text=True)
    assert "Done" in page and "exactly this version" in page

    # The staff member replaces the payslips: the approval no longer counts.
    r = staff.post(f"/t/{world.a.slug}/documents/upload", headers={"Accept": "application/json"},
                   data={"csrf_token": csrf_token(staff, task), "document": payslips,
                         "file": [(io.BytesIO(samples.pdf(6061)), "payroll-march-v2.pdf")]})
    assert "Stored as version 2" in r.json["results"][0]["message"]
    run_jobs()  # the vault announces the version; the work hears it and voids the approval
    page = approver.get(task).get_data(as_text=True)
    assert "Waiting for your approval" in page and "exactly this version" not in page
    assert "March payroll run" in approver.get(f"/t/{world.a.slug}/approvals").get_data(as_text=True)
    # The approvers are told again (the first time when it first needed their word).
    assert approver.get("/notifications").get_data(as_text=True).lower().count("a task needs your approval") == 2
    admin = app.test_client()
    login(admin, world["a_client_admin"])
    log = admin.get(f"/t/{world.a.slug}/access-log").get_data(as_text=True)
    assert "voided an approval: the approved document changed" in log and "March payroll run" in log

    # Through the API the approval names the new version's hash.
    raw = issue_token(app, world["a_client_approver"], world.a, "write")
    task_id = task.rsplit("/", 1)[1]
    one = approver.get(f"/api/v1/tenants/{world.a.slug}/tasks/{task_id}", headers=bearer(raw)).json
    assert one["product"]["version"] == 2 and one["product"]["approved"] is False
    done = approver.post(f"/api/v1/tenants/{world.a.slug}/tasks/{task_id}/moves", headers=bearer(raw),
                         json={"move": "client_approve", "seen_sha256": one["product"]["sha256"]})
    assert done.status_code == 200 and done.json["product"]["approved"] is True
