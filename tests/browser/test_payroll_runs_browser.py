"""A pay run in a real browser: staff calculate it and send it to review, a second person reviews it, the client's
approver opens a payslip and approves the run, and the bank file and the ledger posting appear; each page at both
widths and in both languages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from portal.extensions import db
from tests.browser.steps import look_at, sign_in
from tests.payroll.test_runs import (
    E01,
    E02,
    E03,
    NOVEMBER,
    as_person,
    payroll_world,
    three_employees,
    totals_of,
)

pytestmark = pytest.mark.browser


def _vnd(amount: int) -> re.Pattern:
    """An amount as English (97,223,472) or Vietnamese (97.223.472) pages write it."""
    return re.compile(f"{amount:,}".replace(",", "[.,]"))


def test_a_run_is_calculated_reviewed_approved_and_paid_out(app: Flask, page: Page, screenshot_dir: Path) -> None:
    world = payroll_world(app)
    with app.app_context():
        three_employees(world)
    all_ = totals_of(E01, E02, E03)
    base = f"/t/{world.slug}/payroll/runs"

    sign_in(page, world.staff)
    page.goto(base)
    look_at(page, screenshot_dir, "payroll-runs-empty", lambda: expect(page.get_by_test_id("open-run")).to_be_visible())
    page.locator("input[name=month]").fill("2026-11")
    page.get_by_test_id("open-run-submit").click()
    expect(page.get_by_test_id("run-state")).to_have_attribute("data-state", "draft")
    page.get_by_test_id("calculate-submit").click()
    expect(page.locator(".flash")).to_contain_text("3 payslips")
    expect(page.get_by_test_id("total-net")).to_contain_text(_vnd(all_["net"]))
    expect(page.get_by_test_id("change-E01")).to_contain_text("new this month")
    look_at(page, screenshot_dir, "payroll-run-calculated",
            lambda: expect(page.get_by_test_id("payslips")).to_be_visible())
    page.get_by_test_id("submit-run").click()  # no reviewer chosen: refused, said why
    expect(page.locator(".flash")).to_contain_text("Choose who reviews the run")
    page.locator("select[name=reviewer]").select_option(str(world.manager.id))
    page.get_by_test_id("submit-run").click()
    expect(page.get_by_test_id("run-state")).to_have_attribute("data-state", "in_review")

    page.context.clear_cookies()
    sign_in(page, world.manager)
    page.goto(f"{base}/2026-11")
    look_at(page, screenshot_dir, "payroll-run-review", lambda: expect(page.get_by_test_id("review")).to_be_visible())
    page.get_by_test_id("review-approve").click()
    expect(page.get_by_test_id("run-state")).to_have_attribute("data-state", "awaiting_approval")

    page.context.clear_cookies()
    sign_in(page, world.client)
    page.goto(f"{base}/2026-11")
    expect(page.get_by_test_id("approve")).to_be_visible()
    page.get_by_test_id("payslip-E03").click()
    expect(page.get_by_test_id("slip-take-home")).to_contain_text(_vnd(E03["take_home"]))
    look_at(page, screenshot_dir, "payroll-payslip",
            lambda: expect(page.get_by_test_id("slip-in-words")).to_be_visible())
    page.goto(f"{base}/2026-11")
    look_at(page, screenshot_dir, "payroll-run-approval",
            lambda: expect(page.get_by_test_id("approve")).to_be_visible())
    page.get_by_test_id("client-approve").click()
    expect(page.get_by_test_id("run-state")).to_have_attribute("data-state", "approved")
    expect(page.get_by_test_id("journal-posted")).to_be_visible()
    expect(page.get_by_test_id("after-approval")).to_contain_text(_vnd(all_["take_home"]))
    look_at(page, screenshot_dir, "payroll-run-approved",
            lambda: expect(page.get_by_test_id("bank-files")).to_be_visible())
    with page.expect_download() as download:
        page.get_by_test_id("bank-file-generic").click()
    rows = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert sum(int(r.rsplit(",", 2)[1]) for r in rows[1:]) == all_["take_home"]
    page.get_by_test_id("summaries-link").click()
    look_at(page, screenshot_dir, "payroll-summaries",
            lambda: expect(page.get_by_test_id("summary-pit")).to_contain_text(_vnd(all_["pit"])))
    page.goto(f"{base}/2026-11")
    page.get_by_role("link", name="Open the entry").click()
    expect(page.locator("main")).to_contain_text("334")
    look_at(page, screenshot_dir, "payroll-journal-entry", lambda: expect(page.locator("main h1")).to_be_visible())
    page.goto(f"/t/{world.slug}/payroll/run-settings")
    look_at(page, screenshot_dir, "payroll-settings",
            lambda: expect(page.get_by_test_id("run-settings")).to_be_visible())
    with app.app_context(), as_person(world, world.staff):
        from portal.payroll import runs

        assert runs.get_run(NOVEMBER).state == "approved"
        db.session.rollback()
