"""The whole ledger leaves in open formats: a CSV journal, and a Beancount file bean-check accepts whose
balances are the trial balance's."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from portal.ledger import export, reports, services
from portal.ledger.services import LineInput
from tests.factories import login
from tests.ledger.test_ledger import DAY, PURCHASE, SALE, as_person, books, post


def test_the_beancount_export_passes_bean_check_and_its_balances_are_the_trial_balance(app, tmp_path):
    world = books(app)
    with app.app_context(), as_person(world, world.staff) as (user, tenant):
        post(world, world.staff, SALE)
        post(world, world.staff, PURCHASE)
        reversed_ = post(world, world.staff, [("1121", 11_000_000, 0), ("131", 0, 11_000_000)])
        services.reverse(user, tenant, str(reversed_.id), DAY)
        services.save_draft(user, tenant, DAY, [LineInput("131", 5, 0)])  # a draft is not in the books
        text = export.beancount("VND")
        tb = {r.code: r.debit - r.credit for r in reports.trial_balance(DAY)}
    book = tmp_path / "books.beancount"
    book.write_text(text)
    checked = subprocess.run([str(Path(sys.executable).with_name("bean-check")), str(book)],  # noqa: S603
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    from beancount import loader
    from beancount.core import data

    entries, errors, _options = loader.load_file(str(book))
    assert errors == []
    balances: dict[str, Decimal] = {}
    for entry in entries:
        if isinstance(entry, data.Transaction):
            for posting in entry.postings:
                code = posting.account.rsplit(":A", 1)[1]
                balances[code] = balances.get(code, Decimal(0)) + posting.units.number
    assert {code: int(amount) for code, amount in balances.items()} == tb


def test_the_csv_journal_has_every_posted_line_and_neutralises_formulas(app):
    world = books(app)
    with app.app_context(), as_person(world, world.staff) as (user, tenant):
        services.save_draft(user, tenant, DAY, [LineInput("131", 1_000, 0, "=HYPERLINK(\"x\")"),
                                                LineInput("5111", 0, 1_000)], memo="@evil", post_it=True)
    client = app.test_client()
    login(client, world.client)
    answer = client.get(f"/t/{world.slug}/books/export.csv")
    assert answer.status_code == 200 and "attachment" in answer.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    assert [(r["entry"], r["account"], r["debit"], r["credit"]) for r in rows] == [("1", "131", "1000", "0"),
                                                                                   ("1", "5111", "0", "1000")]
    assert rows[0]["memo"] == "'@evil" and rows[0]["description"].startswith("'=")  # text, never a formula
    assert client.get(f"/t/{world.slug}/books/export.exe").status_code == 404
