"""The annual income tax finalisation's pages under /t/<tenant_slug>/payroll/finalisation: a tax year's page (the
provider's people and the client read the same page) and the summary the client files, as XLSX. Thin: the rules
are in ``finalisation``."""

from __future__ import annotations

import re

from flask import Response, abort, g, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user

from portal.access import requires
from portal.payroll import bp, finalisation
from portal.payroll.employees import masked_id
from portal.payroll.run_views import _file, _no_store
from tenants.zones import reader_today

YEAR = re.compile(r"\d{4}")


def _year(raw: str) -> int:
    """``2026`` → 2026; any other text is not a tax year (404)."""
    if not YEAR.fullmatch(raw or "") or int(raw) < 1900:
        abort(404)
    return int(raw)


@bp.route("/t/<tenant_slug>/payroll/finalisation")
@requires("tenant:payroll.view")
def finalisation_now(tenant_slug: str) -> ResponseReturnValue:
    """The last completed tax year (the current one in December): the same page as the year's own address."""
    return _page(finalisation.default_year(reader_today()))


@bp.route("/t/<tenant_slug>/payroll/finalisation/<year>")
@requires("tenant:payroll.view")
def finalisation_year(tenant_slug: str, year: str) -> ResponseReturnValue:
    return _page(_year(year))


def _page(year: int) -> Response:
    result = finalisation.finalise(year)
    return _no_store(render_template(
        "payroll/finalisation.html", tenant=g.tenant, year=year, result=result,
        years=sorted({*finalisation.years(reader_today()), year}, reverse=True), masked=masked_id,
        pending_words=finalisation.pending_words(result) if result.provisional else ""))


@bp.route("/t/<tenant_slug>/payroll/finalisation/<year>.xlsx")
@requires("tenant:payroll.view")
def finalisation_xlsx(tenant_slug: str, year: str) -> ResponseReturnValue:
    """The summary the client files; the download is in the client's access log."""
    number = _year(year)
    data = finalisation.export_xlsx(current_user._get_current_object(), g.tenant, number, ip=request.remote_addr)
    return _file(data, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                 f"pit-finalisation-{number}.xlsx")
