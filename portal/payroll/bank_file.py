"""What an approved run gives the client: the bank transfer file, and the month's insurance and PIT summaries.

The transfer file pays each employee the take-home pay of the payslip (net pay less deductions after tax, arrears
included) into the bank account the payslip was approved with. Layouts are data (``LAYOUTS``), one per bank format,
chosen in the tenant's payroll settings:

- ``generic``: a header row ``account_number, account_name, amount, description``, UTF-8, names as registered; the
  columns the brief for bulk transfers asks for, which banks' import screens map column by column.
- ``vn_salary``: the salary-payment ("chi lương") sheet Vietnamese banks' business internet banking takes as CSV:
  ``STT, Số tài khoản, Tên người hưởng, Ngân hàng hưởng, Số tiền, Nội dung``, UTF-8 with a byte-order mark (so that
  Excel opens the Vietnamese headers), beneficiary names and the description in capitals without diacritics (what
  interbank transfers carry), amounts as whole đồng without separators. The column set follows the common
  templates of Vietcombank, BIDV and Techcombank as their users describe them; it is not checked against a bank's
  published specification: check one file with the client's bank before the first payment.

Every cell is made safe for spreadsheets (``portal.spreadsheet``). Nothing here is produced before approval.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.payroll.run_models import PayRun
from portal.spreadsheet import row as safe_row
from portal.spreadsheet import xlsx

READY = ("approved", "paid")


def ascii_upper(text: str) -> str:
    """``"Nguyễn Thị Đào"`` → ``"NGUYEN THI DAO"``: what interbank transfers carry."""
    text = text.replace("Đ", "D").replace("đ", "d")
    plain = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return " ".join(plain.upper().split())


@dataclass(frozen=True)
class Transfer:
    """One employee's payment: to whom, where, how much (đồng), why."""

    number: int
    code: str
    name: str
    bank: str
    account: str
    amount: int
    description: str


@dataclass(frozen=True)
class Layout:
    key: str
    name: Any  # lazy text
    header: tuple[str, ...]
    cells: Callable[[Transfer], list[object]]
    bom: bool = False


LAYOUTS: dict[str, Layout] = {
    "generic": Layout("generic", _l("Generic: account number, name, amount, description"),
                      ("account_number", "account_name", "amount", "description"),
                      lambda t: [t.account, t.name, t.amount, t.description]),
    "vn_salary": Layout("vn_salary", _l("Vietnamese banks' salary-payment sheet (Vietcombank, BIDV, Techcombank "
                                        "style): names without diacritics"),
                        ("STT", "Số tài khoản", "Tên người hưởng", "Ngân hàng hưởng", "Số tiền", "Nội dung"),
                        lambda t: [t.number, t.account, ascii_upper(t.name), ascii_upper(t.bank), t.amount,
                                   ascii_upper(t.description)], bom=True),
}


def transfers(run: PayRun) -> tuple[list[Transfer], list[tuple[str, str]]]:
    """The payments of the run, and the payslips left out with why (no bank account, nothing to pay)."""
    paid, left = [], []
    description = _("Salary %(month)s", month=run.label)
    for slip in run.payslips:
        content = slip.content
        employee, amount = content["employee"], int(content["totals"].get("take_home", 0))
        account = (employee.get("bank_account") or "").replace(" ", "")
        if not account:
            left.append((slip.employee_code, _("no bank account: pay by other means")))
        elif amount <= 0:
            left.append((slip.employee_code, _("nothing to pay this month")))
        else:
            paid.append(Transfer(len(paid) + 1, slip.employee_code, employee.get("name") or "",
                                 employee.get("bank_name") or "", account, amount, description))
    return paid, left


def bank_csv(run: PayRun, layout_key: str) -> bytes:
    """The run's transfer file in ``layout_key``'s layout; only for an approved (or paid) run."""
    layout = LAYOUTS[layout_key]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(safe_row(list(layout.header)))
    for transfer in transfers(run)[0]:
        writer.writerow(safe_row(layout.cells(transfer)))
    data = out.getvalue().encode("utf-8")
    return b"\xef\xbb\xbf" + data if layout.bom else data


# --- the insurance and PIT summaries of the month ------------------------------------------------------------

def insurance_rows(run: PayRun) -> tuple[list[str], list[list[object]], list[object]]:
    """Per employee: the insurance salary (BHXH's base), each fund's employee and employer shares (arrears
    included) and the union fee; with a header and the totals row."""
    funds: list[str] = []
    for slip in run.payslips:
        for c in slip.content["lines"]["contributions"]:
            if c["fund"] not in funds:
                funds.append(c["fund"])
    header = [_("Code"), _("Employee"), _("Insurance salary")]
    for fund in funds:
        header += [_("%(fund)s, employee", fund=fund), _("%(fund)s, employer", fund=fund)]
    header += [_("Union fee"), _("Total")]
    body = []
    sums = [0] * (len(header) - 2)
    for slip in run.payslips:
        content, totals = slip.content, slip.content["totals"]
        base = next((c["base"] for c in content["lines"]["contributions"] if c["base"]), 0)
        cells: list[int] = [base]
        for fund in funds:
            cells += [totals.get(f"employee.{fund}", 0), totals.get(f"employer.{fund}", 0)]
        cells.append(totals.get("union_fee", 0))
        cells.append(sum(cells[1:]))
        body.append([slip.employee_code, content["employee"]["name"], *cells])
        sums = [a + b for a, b in zip(sums, cells, strict=True)]
    return header, body, [_("Total"), "", *sums]


def pit_rows(run: PayRun) -> tuple[list[str], list[list[object]], list[object]]:
    """Per employee: tax code, residence, taxable employment income, the deductions, taxable income and the PIT
    withheld this month (arrears included); with a header and the totals row."""
    header = [_("Code"), _("Employee"), _("Tax code"), _("Resident"), _("Taxable employment income"),
              _("Insurance deducted"), _("Family deductions"), _("Taxable income"), _("PIT withheld")]
    body, sums = [], [0] * 5
    for slip in run.payslips:
        content, totals = slip.content, slip.content["totals"]
        resident = content["employee"].get("resident", True)
        cells = [totals.get("taxable_employment_income", 0), totals.get("employee_contributions", 0) if resident else 0,
                 totals.get("family_deduction", 0), totals.get("taxable_income", 0), totals.get("pit", 0)]
        body.append([slip.employee_code, content["employee"]["name"], content["employee"].get("tax_code") or "",
                     _("yes") if resident else _("no"), *cells])
        sums = [a + b for a, b in zip(sums, cells, strict=True)]
    return header, body, [_("Total"), "", "", "", *sums]


def summaries_xlsx(run: PayRun, which: str) -> bytes:
    """The insurance (``which`` "insurance") or PIT ("pit") summary as a workbook, amounts as numbers (đồng)."""
    header, body, total = (insurance_rows if which == "insurance" else pit_rows)(run)
    title = _("Insurance %(month)s", month=run.key) if which == "insurance" else _("PIT %(month)s", month=run.key)
    return xlsx({title: [header, *body, total]})
