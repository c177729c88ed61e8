"""Does a statement follow the one before it? Its opening balance must be the previous closing balance.

"The one before" is the account's statement (same account key and currency, on the current version of a
live document) with the latest period end before this one's; within one file, the statements before it.
A statement that arrives late (October after November) also checks the one after it again, so the order
of uploads does not matter.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, or_, select

from portal.documents.models import Document
from portal.extensions import db
from portal.intake.bank.models import BankStatement


def lock(tenant_id: uuid.UUID, account_key: bytes | None) -> None:
    """Serialise the statements of one account (the caller's transaction holds it to its end): two files of
    the same account read at once both see each other, never neither."""
    if account_key is not None:
        key = f"bank:{tenant_id}:{account_key.hex()}"
        db.session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))


def _live(query):  # noqa: ANN001, ANN202 - a select over BankStatement
    return query.join(Document, (Document.id == BankStatement.document_id)
                      & (Document.current_version == BankStatement.version)).where(Document.trashed_at.is_(None))


def previous(statement: BankStatement) -> BankStatement | None:
    """The account's statement just before ``statement`` (by period end), or None."""
    if statement.account_key is None or statement.period_end is None:
        return None
    same_file = (BankStatement.document_id == statement.document_id) & (BankStatement.version == statement.version)
    query = _live(select(BankStatement)).where(
        BankStatement.account_key == statement.account_key, BankStatement.currency == statement.currency,
        BankStatement.id != statement.id, BankStatement.period_end.is_not(None),
        or_(same_file & (BankStatement.seq < statement.seq),
            ~same_file & (BankStatement.period_end < statement.period_end)))
    return db.session.scalar(query.order_by(BankStatement.period_end.desc(), BankStatement.seq.desc(),
                                            BankStatement.created_at.desc()).limit(1))


def following(statement: BankStatement) -> BankStatement | None:
    """The account's next statement in another file (by period end), or None."""
    if statement.account_key is None or statement.period_end is None:
        return None
    query = _live(select(BankStatement)).where(
        BankStatement.account_key == statement.account_key, BankStatement.currency == statement.currency,
        BankStatement.document_id != statement.document_id, BankStatement.period_end > statement.period_end)
    return db.session.scalar(query.order_by(BankStatement.period_end, BankStatement.seq).limit(1))


def link(statement: BankStatement) -> None:
    """Set ``follows`` and ``continuity`` of ``statement`` from the account's statement before it."""
    before = previous(statement)
    statement.follows_id = before.id if before else None
    if before is None:
        statement.continuity = "first"
    elif before.closing_balance is None or statement.opening_balance is None:
        statement.continuity = "unknown"
    else:
        statement.continuity = "ok" if before.closing_balance == statement.opening_balance else "gap"
