"""ledger: open receivables and payables — due dates, counterparties by keyed hash, settlements

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 11:00:00

An invoice's line on a receivable or payable account is an open item until payments settle it, in parts
or several at once. ``ledger_settlements`` says which payment line settles how much of which item; the
database refuses a settlement that does not fit (another account, the same side, a draft, more than the
item or the payment holds) and never changes or deletes one (a payment reversed simply stops counting),
but for offboarding. ``ledger_entries.due_date`` is the invoice's due date, frozen with the entry once
posted; ``ledger_lines.party_key`` is a keyed hash of the line's counterparty (its tax code when it has
one), so ageing groups by customer and supplier without the database ever reading a name.
"""
import sqlalchemy as sa
from alembic import op

from tenants.rls import grant_app, protect_tenant_table

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

ENTRY_FROZEN = r"""
create or replace function ledger_entry_frozen() returns trigger language plpgsql as $$
begin
  if tg_op = 'DELETE' then
    if old.state = 'posted' and not ledger_offboarding(old.tenant_id) then
      raise exception 'ledger entry % is posted: it is never deleted (reverse it instead)', old.id
        using errcode = '55000', constraint = 'ledger_entry_frozen';
    end if;
    return old;
  end if;
  if old.state = 'posted' and (new.id, new.tenant_id, new.number, new.entry_date, new.state, new.memo, new.source,
                               new.reverses_id, new.posted_at, new.posted_by_id{due_new})
      is distinct from (old.id, old.tenant_id, old.number, old.entry_date, old.state, old.memo, old.source,
                        old.reverses_id, old.posted_at, old.posted_by_id{due_old})
      or old.state = 'posted' and new.document_id is distinct from old.document_id and new.document_id is not null
      or old.reversed_by_id is not null and new.reversed_by_id is distinct from old.reversed_by_id then
    raise exception 'ledger entry % is posted: it never changes (reverse it instead)', old.id
      using errcode = '55000', constraint = 'ledger_entry_frozen';
  end if;
  return new;
end $$;
"""

SETTLEMENTS = r"""
create function ledger_settlement_fits() returns trigger language plpgsql as $$
declare
  item record;
  payment record;
begin
  select l.account_id, l.debit, l.credit, e.state into item
    from ledger_lines l join ledger_entries e on e.id = l.entry_id where l.id = new.item_line_id;
  select l.account_id, l.debit, l.credit, e.state into payment
    from ledger_lines l join ledger_entries e on e.id = l.entry_id where l.id = new.settling_line_id;
  if item.state <> 'posted' or payment.state <> 'posted' or item.account_id <> payment.account_id
      or (item.debit > 0) = (payment.debit > 0) then
    raise exception 'a settlement joins two posted lines of one account, on opposite sides'
      using errcode = '23514', constraint = 'ledger_settlement_fits';
  end if;
  -- What an item (a payment) holds already: its settlements whose other side is still in the books. A reversed
  -- payment stops settling its invoices, and a reversed invoice frees its payments, as open_items reads them.
  if (select sum(s.amount) from ledger_settlements s join ledger_lines l on l.id = s.settling_line_id
        join ledger_entries e on e.id = l.entry_id
        where s.item_line_id = new.item_line_id and e.reversed_by_id is null) > item.debit + item.credit
      or (select sum(s.amount) from ledger_settlements s join ledger_lines l on l.id = s.item_line_id
        join ledger_entries e on e.id = l.entry_id
        where s.settling_line_id = new.settling_line_id and e.reversed_by_id is null)
         > payment.debit + payment.credit then
    raise exception 'a settlement may not exceed what the item or the payment holds'
      using errcode = '23514', constraint = 'ledger_settlement_fits';
  end if;
  return null;
end $$;

create function ledger_settlement_frozen() returns trigger language plpgsql as $$
begin
  if not ledger_offboarding(old.tenant_id) then
    raise exception 'a settlement never changes (reverse the payment instead)'
      using errcode = '55000', constraint = 'ledger_settlement_frozen';
  end if;
  return case when tg_op = 'DELETE' then old else new end;
end $$;

create constraint trigger ledger_settlements_fit after insert on ledger_settlements
  deferrable initially deferred for each row execute function ledger_settlement_fits();
create trigger ledger_settlements_frozen before update or delete on ledger_settlements
  for each row execute function ledger_settlement_frozen();
"""


def upgrade():
    op.add_column("ledger_entries", sa.Column("due_date", sa.Date()))
    op.add_column("ledger_lines", sa.Column("party_key", sa.LargeBinary()))
    op.create_index("ix_ledger_lines_party", "ledger_lines", ["tenant_id", "party_key"],
                    postgresql_where=sa.text("party_key is not null"))
    op.create_table(
        "ledger_settlements",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("item_line_id", sa.Uuid(), sa.ForeignKey("ledger_lines.id", ondelete="RESTRICT"), nullable=False,
                  index=True),
        sa.Column("settling_line_id", sa.Uuid(), sa.ForeignKey("ledger_lines.id", ondelete="RESTRICT"),
                  nullable=False, index=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("created_by_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), sa.ForeignKey("tenants.id", ondelete="RESTRICT"), nullable=False,
                  index=True),
        sa.UniqueConstraint("item_line_id", "settling_line_id", name=op.f("uq_ledger_settlements_item_line_id")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_ledger_settlements_positive")),
    )
    op.execute(ENTRY_FROZEN.format(due_new=", new.due_date", due_old=", old.due_date"))
    op.execute(SETTLEMENTS)
    protect_tenant_table("ledger_settlements")
    grant_app("ledger_settlements")


def downgrade():
    op.drop_table("ledger_settlements")
    op.execute("drop function ledger_settlement_fits(), ledger_settlement_frozen()")
    op.execute(ENTRY_FROZEN.format(due_new="", due_old=""))
    op.drop_index("ix_ledger_lines_party", "ledger_lines")
    op.drop_column("ledger_lines", "party_key")
    op.drop_column("ledger_entries", "due_date")
