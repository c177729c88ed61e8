"""Payroll: the calculation engine (``engine``) over versioned rule sets (``rules``, data in ``rules/``).

Pure functions, no database and no blueprint yet: pay runs, payslips and their pages build on this API.
"""
