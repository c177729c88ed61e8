"""Bank statements read by the intake chain: OFX (``ofxtools``), MT940 (``mt-940``) and CSV with a column
mapping saved per bank and tenant, into statements and transactions (``models``) that the ledger reconciles.

``step`` registers the chain's "bank" step; ``views`` the document page's panel and the mapping form;
``portal.api.bank`` the API. A statement whose opening balance does not follow the account's previous
closing balance is flagged (``continuity``).
"""

from __future__ import annotations

from portal.intake.bank import models, step, views  # noqa: F401 - models map, the step registers, routes
