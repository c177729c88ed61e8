"""Payroll: a tenant's employees and their attendance (``models``), the calculation engine (``engine``) over
versioned rule sets (``rules``, data in ``rules/``), and the pages built on them."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("payroll", __name__, template_folder="templates")


def init_app(app: Flask) -> None:
    from portal.offboarding import export
    from portal.payroll import employee_views, models  # noqa: F401 - models map, the people pages' routes

    for table in (_employees_table, _attendance_table):
        if table not in export.EXPORTERS:  # once, however many apps a process makes
            export.register(table)  # the client's employees go into its export, like its other data
    _pay_runs()
    app.register_blueprint(bp)


def _pay_runs() -> None:
    """Pay runs (``runs``, pages in ``run_views``): their models and routes, the changes and the approvals they
    listen to, and what they add to the statement (a section, the payslips meter) and keep out of intake."""
    from flask_babel import lazy_gettext as _l

    from portal import events
    from portal.billing import meters, sections
    from portal.intake import routing
    from portal.payroll import (  # noqa: F401 - models map, routes register
        finalisation_views,
        link_models,
        link_views,
        run_models,
        run_views,
        runs,
    )

    runs.listen()  # a change of employees, dependants or attendance calculates open runs again
    events.subscribe("task.done", "payroll.runs", runs.task_done)  # the run's task done: the run is approved
    sections.register("payroll", 27, runs.statement_section)
    meters.register(runs.payslips_meter, {"payslips": _l("Payslips")}, {"payslips": _l("payslips")})
    if runs.own_documents not in meters.OWN_DOCUMENTS:
        meters.OWN_DOCUMENTS.append(runs.own_documents)  # payslips are not documents the client sent
    routing.keep_out(runs.is_payroll_document)


def _employees_table():  # noqa: ANN202 - portal.offboarding.export.Table
    """The bound tenant's employees for the client's export, every field in clear (the archive is encrypted for
    the client alone), allowances and dependants as JSON."""
    import json

    from portal.offboarding.export import Table
    from portal.payroll import employees as people

    rows = people.employees()
    header = [*people.FIELDS, "allowances", "dependants"]
    return Table("payroll_employees", header, [
        [*("" if getattr(e, f) is None else getattr(e, f) for f in people.FIELDS),
         json.dumps(e.allowances, ensure_ascii=False),
         json.dumps([{"name": d.name, "relation": d.relation, "from": d.from_month.strftime("%Y-%m"),
                      "to": d.to_month.strftime("%Y-%m") if d.to_month else None} for d in e.dependants],
                    ensure_ascii=False)] for e in rows])


def _attendance_table():  # noqa: ANN202 - portal.offboarding.export.Table
    """The bound tenant's attendance by month and employee, for the client's export."""
    import json

    from sqlalchemy import select

    from portal.extensions import db
    from portal.offboarding.export import Table
    from portal.payroll.models import Attendance, Employee

    rows = db.session.execute(select(Attendance, Employee.code).join(Employee, Employee.id == Attendance.employee_id)
                              .order_by(Attendance.month, Employee.code)).all()
    return Table("payroll_attendance", ["month", "code", "working_days", "days_worked", "paid_leave",
                                        "unpaid_leave", "overtime", "bonuses", "deductions", "source"],
                 [[a.month.strftime("%Y-%m"), code, a.working_days, a.days_worked, a.paid_leave, a.unpaid_leave,
                   json.dumps(a.overtime), json.dumps(a.bonuses, ensure_ascii=False),
                   json.dumps(a.deductions, ensure_ascii=False), a.source] for a, code in rows])
