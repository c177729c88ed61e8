"""Bank statement files made here from ground truth: OFX (SGML v1 and XML v2), MT940 and CSV.

Each maker takes the transactions as the test means them (a date, an amount as the bank writes it, who,
what) and writes them the way a bank's export does; the tests compare what intake stored with that truth,
never with what a parser read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal


@dataclass(frozen=True)
class Tx:
    day: date
    amount: Decimal  # signed, in the major unit
    name: str | None = None
    account: str | None = None
    memo: str | None = None
    fitid: str | None = None


def _ofx_body(account: str, currency: str, start: date, end: date, txs: list[Tx], closing: Decimal,
              *, xml: bool, org: str = "Vietcombank") -> str:
    close = (lambda tag: f"</{tag}>") if xml else (lambda _tag: "")  # SGML leaves elements open

    def el(tag: str, value: object) -> str:
        text = str(value)
        if xml:
            text = text.replace("&", "&amp;").replace("<", "&lt;")
        return f"<{tag}>{text}{close(tag)}"

    lines = []
    for i, tx in enumerate(txs, start=1):
        other = (f"<BANKACCTTO>{el('BANKID', '970436')}{el('ACCTID', tx.account)}{el('ACCTTYPE', 'CHECKING')}"
                 f"</BANKACCTTO>") if tx.account else ""
        lines.append(f"<STMTTRN>{el('TRNTYPE', 'CREDIT' if tx.amount > 0 else 'DEBIT')}"
                     f"{el('DTPOSTED', tx.day.strftime('%Y%m%d') + '000000[+7:ICT]')}{el('TRNAMT', tx.amount)}"
                     f"{el('FITID', tx.fitid or f'F{i:04d}')}{el('NAME', tx.name) if tx.name else ''}{other}"
                     f"{el('MEMO', tx.memo) if tx.memo else ''}</STMTTRN>")
    return (f"<OFX><SIGNONMSGSRSV1><SONRS><STATUS>{el('CODE', 0)}{el('SEVERITY', 'INFO')}</STATUS>"
            f"{el('DTSERVER', end.strftime('%Y%m%d'))}{el('LANGUAGE', 'VIE')}<FI>{el('ORG', org)}</FI></SONRS>"
            f"</SIGNONMSGSRSV1><BANKMSGSRSV1><STMTTRNRS>{el('TRNUID', 1)}<STATUS>{el('CODE', 0)}"
            f"{el('SEVERITY', 'INFO')}</STATUS><STMTRS>{el('CURDEF', currency)}<BANKACCTFROM>"
            f"{el('BANKID', '970436')}{el('ACCTID', account)}{el('ACCTTYPE', 'CHECKING')}</BANKACCTFROM>"
            f"<BANKTRANLIST>{el('DTSTART', start.strftime('%Y%m%d'))}{el('DTEND', end.strftime('%Y%m%d'))}\n"
            + "\n".join(lines) +
            f"\n</BANKTRANLIST><LEDGERBAL>{el('BALAMT', closing)}{el('DTASOF', end.strftime('%Y%m%d'))}</LEDGERBAL>"
            f"</STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>\n")


def ofx_v1(account: str, currency: str, start: date, end: date, txs: list[Tx], closing: Decimal, *,
           charset: str = "NONE") -> bytes:
    """OFX 1.0.2: the SGML header, elements left open; UTF-8 (CHARSET:NONE, for Vietnamese names) or
    Windows-1252 (CHARSET:1252, as American and European banks write it)."""
    encoding = "UTF-8" if charset == "NONE" else "USASCII"
    header = (f"OFXHEADER:100\r\nDATA:OFXSGML\r\nVERSION:102\r\nSECURITY:NONE\r\nENCODING:{encoding}\r\n"
              f"CHARSET:{charset}\r\nCOMPRESSION:NONE\r\nOLDFILEUID:NONE\r\nNEWFILEUID:NONE\r\n\r\n")
    body = header + _ofx_body(account, currency, start, end, txs, closing, xml=False)
    return body.encode("utf-8" if charset == "NONE" else "cp1252")


def ofx_v2(account: str, currency: str, start: date, end: date, txs: list[Tx], closing: Decimal) -> bytes:
    """OFX 2.2: XML, UTF-8, every element closed."""
    header = ('<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
              '<?OFX OFXHEADER="200" VERSION="220" SECURITY="NONE" OLDFILEUID="NONE" NEWFILEUID="NONE"?>\n')
    return (header + _ofx_body(account, currency, start, end, txs, closing, xml=True)).encode()


def _swift_amount(value: Decimal) -> str:
    whole, _sep, frac = f"{abs(value):f}".partition(".")
    return f"{whole},{frac}"


def _balance(tag: str, day: date, currency: str, value: Decimal) -> str:
    mark = "C" if value >= 0 else "D"
    return f":{tag}:{mark}{day.strftime('%y%m%d')}{currency}{_swift_amount(value)}"


def mt940_block(ref: str, account: str, currency: str, opening: tuple[date, Decimal], txs: list[Tx],
                closing_day: date) -> str:
    """One MT940 statement (``:20:`` to ``:62F:``); the closing balance is the opening plus the lines."""
    rows = [f":20:{ref}", f":25:{account}", ":28C:1/1", _balance("60F", opening[0], currency, opening[1])]
    for tx in txs:
        mark = "C" if tx.amount > 0 else "D"
        rows.append(f":61:{tx.day.strftime('%y%m%d%m%d')}{mark}{_swift_amount(tx.amount)}NTRF"
                    f"{tx.fitid or 'NONREF'}")
        details = (tx.memo or "") + (f"/NAME/{tx.name}" if tx.name else "") + (f"/ACCT/{tx.account}" if tx.account
                                                                              else "")
        rows.append(f":86:{details}")
    rows.append(_balance("62F", closing_day, currency, opening[1] + sum((t.amount for t in txs), Decimal(0))))
    return "\r\n".join(rows) + "\r\n"


def mt940(*blocks: str) -> bytes:
    """An MT940 file of one or more statements, in the SWIFT envelope some banks keep."""
    return ("{1:F01BFTVVNVXAXXX0000000000}{2:O9400000000000BFTVVNVXAXXX00000000000000000000N}{4:\r\n"
            + "-}\r\n{4:\r\n".join(blocks) + "-}\r\n").encode()


CSV_HEADER = ["Ngày giao dịch", "Mô tả", "Đối tác", "Số tài khoản đối tác", "Ghi nợ", "Ghi có", "Số dư"]


def csv_statement(rows: list[Tx], opening: Decimal, *, newest_first: bool = True) -> bytes:
    """A Vietnamese bank's CSV export: a preamble, the header, newest first, grouped thousands, a total row."""
    balance = opening
    lines = []
    for tx in rows:
        balance += tx.amount
        debit = f"{-tx.amount:,.0f}" if tx.amount < 0 else ""
        credit = f"{tx.amount:,.0f}" if tx.amount > 0 else ""
        lines.append([tx.day.strftime("%d/%m/%Y"), tx.memo or "", tx.name or "", tx.account or "", debit, credit,
                      f"{balance:,.0f}"])
    if newest_first:
        lines.reverse()
    out = ["SAO KÊ TÀI KHOẢN,,,,,,", "Số tài khoản,0011004999888,,,,,", ",,,,,,", ",".join(CSV_HEADER)]
    out += [",".join(f'"{cell}"' if "," in cell else cell for cell in line) for line in lines]
    out.append(",Tổng cộng,,,,,")
    return ("\n".join(out) + "\n").encode()
