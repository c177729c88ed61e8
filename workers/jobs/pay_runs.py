"""Pay run jobs: a run calculated again after its data changed, its payslips' PDFs, and their e-mailed links."""

from __future__ import annotations

from workers.jobs import job


@job("payroll.inputs_changed")
def inputs_changed() -> None:
    """Employees, dependants or attendance of the bound tenant changed: runs whose figures moved are calculated
    again (their review and approval void)."""
    from portal.payroll.runs import inputs_changed as recalculate
    from tenants.context import current_scope

    recalculate(str(current_scope().tenant_id))


@job("payroll.payslip_pdfs")
def payslip_pdfs(run_id: str, version: str) -> None:
    """Render and store a run's payslip PDFs for its calculation ``version`` (a batch; the next is queued)."""
    from portal.payroll.payslips import render_pdfs

    render_pdfs(run_id, version)


@job("payroll.payslip_links")
def payslip_links(run_id: str, after: str) -> None:
    """E-mail a paid run's payslip links, a batch of payslips after employee code ``after`` (the next is queued)."""
    from portal.payroll.links import send_batch

    send_batch(run_id, after)
