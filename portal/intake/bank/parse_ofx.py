"""OFX bank and credit-card statements (SGML v1 and XML v2) read with ``ofxtools``.

ofxtools reads both versions with its own tag scanner (no XML parser, so no entities, DTDs or network)
and checks the structure against the OFX specification. Dates are taken as the bank wrote them
(YYYYMMDD, before any time zone): ofxtools turns them into UTC instants, which would move a posting
made just after midnight in Hanoi (+7) to the day before.
"""

from __future__ import annotations

import io
import logging
import re
from datetime import date
from xml.etree import ElementTree as ET  # noqa: S405 - walks ofxtools' own tree; nothing is parsed as XML

from portal.intake.bank.statement import BankFileError, Line, Statement, currency_code, to_minor

_DAY = re.compile(r"\s*(\d{4})(\d{2})(\d{2})")


# The library logs the lines it cannot read, amounts and names included: a statement's content never goes
# to the logs (docs/security.md), only the reason word the step records.
logging.getLogger("ofxtools").setLevel(logging.WARNING)


def parse(data: bytes) -> list[Statement]:
    """The statements of an OFX file, one per account; ``BankFileError`` when it is not one we can read."""
    from ofxtools.Parser import OFXTree

    tree = OFXTree()
    try:
        tree.parse(io.BytesIO(data))
        ofx = tree.convert()
        found = list(ofx.statements)
    except Exception:  # noqa: BLE001 - a pure parse of bytes: whatever stops it is the file's fault
        raise BankFileError("bank_malformed_ofx") from None
    # The raw aggregates, in the same order as ofxtools' statements, for the dates as written.
    raw = [el for el in tree.getroot().iter() if el.tag in ("STMTRS", "CCSTMTRS")]
    org = _org(ofx)
    statements = [_statement(stmt, raw[i] if i < len(raw) else None, org) for i, stmt in enumerate(found)
                  if type(stmt).__name__ in ("STMTRS", "CCSTMTRS")]
    if not statements:
        raise BankFileError("bank_not_statement")  # an investment statement, or a sign-on only
    return statements


def _statement(stmt: object, raw: ET.Element | None, org: str | None) -> Statement:
    try:
        currency = currency_code(stmt.curdef)
        account = stmt.account
        trans = stmt.banktranlist
        raw_lines = raw.findall("./BANKTRANLIST/STMTTRN") if raw is not None else []
        lines = [_line(tx, raw_lines[i] if i < len(raw_lines) else None, currency)
                 for i, tx in enumerate(trans or [])]
        ledger = stmt.ledgerbal
        bank = org or getattr(account, "bankid", None)
        statement = Statement(
            format="ofx", currency=currency, bank=bank, account=account.acctid, lines=lines,
            period_start=_raw_day(raw, "./BANKTRANLIST/DTSTART") or (trans.dtstart.date() if trans else None),
            period_end=_raw_day(raw, "./BANKTRANLIST/DTEND") or (trans.dtend.date() if trans else None),
            closing=to_minor(ledger.balamt, currency) if ledger is not None else None)
    except BankFileError:
        raise
    except Exception:  # noqa: BLE001 - a field missing or of the wrong shape: a damaged file
        raise BankFileError("bank_malformed_ofx") from None
    return statement.settle()


def _line(tx: object, raw: ET.Element | None, currency: str) -> Line:
    cur = next((c for c in (getattr(tx, "currency", None), getattr(tx, "origcurrency", None)) if c is not None), None)
    line_currency = currency_code(cur.cursym) if cur is not None else currency
    other = next((acct for acct in (getattr(tx, "bankacctto", None), getattr(tx, "ccacctto", None))
                  if acct is not None), None)  # aggregates are falsy when they hold no list items
    payee = getattr(tx, "payee", None)
    name = tx.name or (payee.name if payee is not None else None)
    reference = " · ".join(p for p in (tx.memo, tx.refnum, tx.checknum) if p) or None
    return Line(booked_on=_raw_day(raw, "./DTPOSTED") or tx.dtposted.date(),
                value_on=_raw_day(raw, "./DTUSER") or (tx.dtuser.date() if tx.dtuser else None),
                amount=to_minor(tx.trnamt, line_currency), currency=line_currency,
                counterparty_name=name, counterparty_account=other.acctid if other is not None else None,
                reference=reference, bank_ref=tx.fitid)


def _raw_day(parent: ET.Element | None, path: str) -> date | None:
    node = parent.find(path) if parent is not None else None
    match = _DAY.match(node.text or "") if node is not None else None
    return date(int(match[1]), int(match[2]), int(match[3])) if match else None


def _org(ofx: object) -> str | None:
    """The bank's name from the sign-on (FI/ORG), when it gives one."""
    try:
        return ofx.signonmsgsrsv1.sonrs.fi.org or None
    except AttributeError:
        return None
