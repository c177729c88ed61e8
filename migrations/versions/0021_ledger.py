"""the ledger: books, chart of accounts, months, journal entries and lines, with the rules in the database

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-11 10:00:00

Tenant-owned tables under row-level security: ledger_books (bookkeeping switched on: the chart, currency
and fiscal year), ledger_accounts (the chart), ledger_periods (months: open, in review, closed),
ledger_entries and ledger_lines (exact integer amounts in the minor unit; memo, descriptions and
counterparties sealed).

Rules no code path can break, whatever the service does:
- a posted entry's debits equal its credits, and it has at least two lines: a constraint trigger deferred
  to the commit, so lines may be written one by one inside a transaction;
- a posted entry and its lines never change again, except the mark that it was reversed and a link to a
  document that was deleted; they are never deleted (but by offboarding, which says so in
  ``app.offboarding`` for the tenant it deletes);
- nothing is posted into a closed month.
"""
import sqlalchemy as sa
from alembic import op

from tenants.rls import grant_app, protect_tenant_table

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

TABLES = ("ledger_books", "ledger_accounts", "ledger_periods", "ledger_entries", "ledger_lines")

FUNCTIONS = r"""
create function ledger_offboarding(tenant uuid) returns boolean language sql stable as $$
  select coalesce(current_setting('app.offboarding', true), '') = tenant::text  -- unset: NULL, never true
$$;

create function ledger_balanced() returns trigger language plpgsql as $$
declare
  entry uuid;
  debits bigint;
  credits bigint;
  lines int;
begin
  if tg_table_name = 'ledger_entries' then
    entry := new.id;
  elsif tg_op = 'DELETE' then
    entry := old.entry_id;
  else
    entry := new.entry_id;
  end if;
  if not exists (select 1 from ledger_entries where id = entry and state = 'posted') then
    return null;  -- a draft may be anything; an entry deleted since is gone
  end if;
  select coalesce(sum(debit), 0), coalesce(sum(credit), 0), count(*) into debits, credits, lines
    from ledger_lines where entry_id = entry;
  if debits <> credits or lines < 2 then
    raise exception 'ledger entry % is not balanced: debits %, credits %, % lines', entry, debits, credits, lines
      using errcode = '23514', constraint = 'ledger_entry_balanced';
  end if;
  return null;
end $$;

create function ledger_entry_frozen() returns trigger language plpgsql as $$
begin
  if tg_op = 'DELETE' then
    if old.state = 'posted' and not ledger_offboarding(old.tenant_id) then
      raise exception 'ledger entry % is posted: it is never deleted (reverse it instead)', old.id
        using errcode = '55000', constraint = 'ledger_entry_frozen';
    end if;
    return old;
  end if;
  if old.state = 'posted' and (new.id, new.tenant_id, new.number, new.entry_date, new.state, new.memo, new.source,
                               new.reverses_id, new.posted_at, new.posted_by_id)
      is distinct from (old.id, old.tenant_id, old.number, old.entry_date, old.state, old.memo, old.source,
                        old.reverses_id, old.posted_at, old.posted_by_id)
      or old.state = 'posted' and new.document_id is distinct from old.document_id and new.document_id is not null
      or old.reversed_by_id is not null and new.reversed_by_id is distinct from old.reversed_by_id then
    raise exception 'ledger entry % is posted: it never changes (reverse it instead)', old.id
      using errcode = '55000', constraint = 'ledger_entry_frozen';
  end if;
  return new;
end $$;

create function ledger_line_frozen() returns trigger language plpgsql as $$
begin
  if exists (select 1 from ledger_entries where id in (old.entry_id, (case when tg_op = 'UPDATE' then new.entry_id end))
             and state = 'posted') and not ledger_offboarding(old.tenant_id) then
    if tg_op = 'UPDATE' and (to_jsonb(new) - 'document_id') = (to_jsonb(old) - 'document_id')
        and new.document_id is null then
      return new;  -- the document it pointed at was deleted
    end if;
    raise exception 'ledger entry % is posted: its lines never change (reverse it instead)', old.entry_id
      using errcode = '55000', constraint = 'ledger_entry_frozen';
  end if;
  return case when tg_op = 'DELETE' then old else new end;
end $$;

create function ledger_month_open() returns trigger language plpgsql as $$
begin
  if new.state = 'posted' and (tg_op = 'INSERT' or old.state <> 'posted') and exists (
      select 1 from ledger_periods where tenant_id = new.tenant_id
        and month = date_trunc('month', new.entry_date)::date and state = 'closed') then
    raise exception 'the month of % is closed: nothing is posted into it', new.entry_date
      using errcode = '55000', constraint = 'ledger_month_closed';
  end if;
  return new;
end $$;

create constraint trigger ledger_lines_balanced after insert or update or delete on ledger_lines
  deferrable initially deferred for each row execute function ledger_balanced();
create constraint trigger ledger_entries_balanced after insert or update on ledger_entries
  deferrable initially deferred for each row execute function ledger_balanced();
create trigger ledger_entries_frozen before update or delete on ledger_entries
  for each row execute function ledger_entry_frozen();
create trigger ledger_lines_frozen before update or delete on ledger_lines
  for each row execute function ledger_line_frozen();
create trigger ledger_entries_month_open before insert or update on ledger_entries
  for each row execute function ledger_month_open();
"""


def _tenant() -> list[sa.Column]:
    return [sa.Column("tenant_id", sa.Uuid(), sa.ForeignKey("tenants.id", ondelete="RESTRICT"), nullable=False,
                      index=True)]


def _stamps() -> list[sa.Column]:
    return [sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)]


def upgrade():
    op.create_table(
        "ledger_books",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("chart", sa.String(20), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("fiscal_year_start", sa.Integer(), nullable=False),
        sa.Column("tax_code", sa.String(14)),
        sa.Column("started_by_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        *_stamps(), *_tenant(),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_ledger_books_tenant_id")),
    )
    op.create_table(
        "ledger_accounts",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("code", sa.String(20), nullable=False),
        sa.Column("parent_id", sa.Uuid(), sa.ForeignKey("ledger_accounts.id", ondelete="RESTRICT")),
        sa.Column("name_vi", sa.String(200), nullable=False),
        sa.Column("name_en", sa.String(200), nullable=False),
        sa.Column("type", sa.String(10), nullable=False),
        sa.Column("normal", sa.String(6), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("from_template", sa.Boolean(), nullable=False),
        *_stamps(), *_tenant(),
        sa.UniqueConstraint("tenant_id", "code", name=op.f("uq_ledger_accounts_tenant_id")),
    )
    op.create_table(
        "ledger_periods",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("closed_by_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("closed_hash", sa.String(64)),
        sa.Column("reopened_reason", sa.LargeBinary()),
        sa.Column("task_id", sa.Uuid(), sa.ForeignKey("tasks.id", ondelete="SET NULL")),
        sa.Column("report_id", sa.Uuid(), sa.ForeignKey("documents.id", ondelete="SET NULL")),
        *_stamps(), *_tenant(),
        sa.UniqueConstraint("tenant_id", "month", name=op.f("uq_ledger_periods_tenant_id")),
        sa.CheckConstraint("state in ('open', 'in_review', 'closed')", name=op.f("ck_ledger_periods_state")),
        sa.CheckConstraint("extract(day from month) = 1", name=op.f("ck_ledger_periods_first_of_month")),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("number", sa.Integer()),
        sa.Column("entry_date", sa.Date(), nullable=False),
        sa.Column("state", sa.String(6), nullable=False),
        sa.Column("memo", sa.LargeBinary()),
        sa.Column("source", sa.String(12), nullable=False),
        sa.Column("document_id", sa.Uuid(), sa.ForeignKey("documents.id", ondelete="SET NULL"), index=True),
        sa.Column("reverses_id", sa.Uuid(), sa.ForeignKey("ledger_entries.id", ondelete="RESTRICT"), unique=True),
        sa.Column("reversed_by_id", sa.Uuid(), sa.ForeignKey("ledger_entries.id", ondelete="RESTRICT"), unique=True),
        sa.Column("created_by_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("posted_at", sa.DateTime(timezone=True)),
        sa.Column("posted_by_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        *_stamps(), *_tenant(),
        sa.UniqueConstraint("tenant_id", "number", name=op.f("uq_ledger_entries_tenant_id")),
        sa.CheckConstraint("state in ('draft', 'posted')", name=op.f("ck_ledger_entries_state")),
        sa.CheckConstraint("(state = 'posted') = (number is not null and posted_at is not null)",
                           name=op.f("ck_ledger_entries_posted_numbered")),
    )
    op.create_index("ix_ledger_entries_date", "ledger_entries", ["tenant_id", "state", "entry_date"])
    op.create_table(
        "ledger_lines",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("entry_id", sa.Uuid(), sa.ForeignKey("ledger_entries.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Uuid(), sa.ForeignKey("ledger_accounts.id", ondelete="RESTRICT"), nullable=False),
        sa.Column("debit", sa.BigInteger(), nullable=False),
        sa.Column("credit", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.LargeBinary()),
        sa.Column("counterparty", sa.LargeBinary()),
        sa.Column("tax_code", sa.String(10)),
        sa.Column("document_id", sa.Uuid(), sa.ForeignKey("documents.id", ondelete="SET NULL")),
        sa.Column("currency", sa.String(3)),
        sa.Column("original_amount", sa.BigInteger()),
        sa.Column("rate", sa.Numeric(18, 6)),
        *_tenant(),
        sa.UniqueConstraint("entry_id", "line_no", name=op.f("uq_ledger_lines_entry_id")),
        sa.CheckConstraint("debit >= 0 and credit >= 0 and (debit = 0) <> (credit = 0)",
                           name=op.f("ck_ledger_lines_one_side")),
        sa.CheckConstraint("(currency is null) = (original_amount is null) and (currency is null) = (rate is null)",
                           name=op.f("ck_ledger_lines_foreign_whole")),
    )
    op.create_index("ix_ledger_lines_account", "ledger_lines", ["tenant_id", "account_id"])
    op.execute(FUNCTIONS)
    for table in TABLES:
        protect_tenant_table(table)
        grant_app(table)


def downgrade():
    for table in reversed(TABLES):
        op.drop_table(table)
    op.execute("drop function ledger_balanced(), ledger_entry_frozen(), ledger_line_frozen(), ledger_month_open(), "
               "ledger_offboarding(uuid)")
