"""A payslip e-mailed as a link, in a real browser: the employee opens the link from the e-mail, types a wrong
national id number and is told so, then the right one and gets the PDF, in English and in Vietnamese; the page at
1280 and 390 px in both languages. Then the provider's staff see on the run's page that it was opened."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from tests.browser.steps import look_at, sign_in, switch_language
from tests.payroll.test_payslip_links import ID_E01, ID_E02, link_of, mails, paid_run, pdf_text

pytestmark = pytest.mark.browser


def _download(page: Page, national_id: str) -> bytes:
    page.locator("input[name=national_id]").fill(national_id)  # the label is in the page's language
    with page.expect_download() as info:
        page.get_by_test_id("open-payslip").click()
    return Path(info.value.path()).read_bytes()


def test_an_employee_opens_the_emailed_link_with_their_national_id(app: Flask, page: Page, screenshot_dir: Path,
                                                                   smtp, run_jobs) -> None:
    world = paid_run(app, run_jobs, language="both")
    path = link_of(mails(smtp, world.mail["E01"])[0])

    page.goto(path)
    look_at(page, screenshot_dir, "payslip-link",
            lambda: expect(page.get_by_test_id("open-payslip")).to_be_visible())
    expect(page.get_by_test_id("payslip-link")).to_contain_text(world.name)
    expect(page.get_by_test_id("payslip-link")).to_contain_text("11/2026")

    page.locator("input[name=national_id]").fill(ID_E02)  # a colleague's number
    page.get_by_test_id("open-payslip").click()
    expect(page.locator(".field .error")).to_contain_text("4 tries are left")
    expect(page.locator("input[name=national_id]")).to_have_value("")  # not written back
    look_at(page, screenshot_dir, "payslip-link-wrong",
            lambda: expect(page.get_by_test_id("open-payslip")).to_be_visible())

    pdf = _download(page, ID_E01)
    assert pdf.startswith(b"%PDF") and "Nguyễn Văn E01" in pdf_text(pdf)

    switch_language(page, "vi")
    pdf = _download(page, ID_E01)
    assert pdf.startswith(b"%PDF") and world.name in pdf_text(pdf)
    switch_language(page, "en")

    page.context.clear_cookies()
    sign_in(page, world.staff)
    page.goto(f"/t/{world.slug}/payroll/runs/2026-11")
    expect(page.locator('[data-testid=payslip-links] tr[data-code="E01"]')).to_have_attribute("data-state", "opened")
    expect(page.get_by_test_id("not-emailed")).to_contain_text("E04")
    look_at(page, screenshot_dir, "payroll-run-mailing",
            lambda: expect(page.get_by_test_id("payslip-links")).to_be_visible())
