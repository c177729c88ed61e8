"""The types and rules of data-entry fields: each type's values checked by its rules, every error at once.

Expected values are worked out here from the rules (a tax code's check digit from its weights, amounts
from the currency's minor unit), never read back from the code under test.
"""

from __future__ import annotations

import pytest

from portal.dataentry.fields import Field, FieldErrors, FieldInput, check_definition, check_values, key_from_label

MST_WEIGHTS = (31, 29, 23, 19, 17, 13, 7, 5, 3)  # the MST's check digit: 10 - (weighted sum mod 11)


def mst(first_nine: str) -> str:
    """A tax code with its right check digit, computed here from the rule."""
    digit = 10 - sum(w * int(d) for w, d in zip(MST_WEIGHTS, first_nine, strict=True)) % 11
    assert digit < 10, "this prefix has no valid check digit: pick another"
    return first_nine + str(digit)


def wrong_digit(code: str) -> str:
    return code[:9] + str((int(code[9]) + 1) % 10)


FIELDS = [
    Field("memo", "Memo", "text", max_length=10),
    Field("qty", "Quantity", "number", min="0.5", max="100"),
    Field("total", "Total", "amount", required=True, min=1000, max=5_000_000),
    Field("issued", "Issued on", "date", earliest="2026-01-01", latest="2026-12-31"),
    Field("seller", "Seller's tax code", "tax_code"),
    Field("kind", "Kind", "choice", options=("Hoá đơn GTGT", "Phiếu thu")),
]


def check(raw: dict, *, currency: str = "VND", locale: str = "en", fields: list[Field] = FIELDS) -> dict:
    return check_values(fields, raw, currency=currency, locale=locale)


def errors_of(raw: dict, **kw) -> dict[str, str]:  # noqa: ANN003
    with pytest.raises(FieldErrors) as refused:
        check(raw, **kw)
    return refused.value.errors


def test_good_values_are_kept_in_each_types_own_form(ctx):
    code = mst("010023348")
    kept = check({"memo": "  Tháng 11 ", "qty": "12.5", "total": "2,000,000", "issued": "05/11/2026",
                  "seller": code, "kind": "phiếu thu"})
    assert kept == {"memo": "Tháng 11", "qty": "12.5", "total": 2_000_000, "issued": "2026-11-05",
                    "seller": code, "kind": "Phiếu thu"}
    # In Vietnamese the same figures are typed with the other separators; a branch keeps its three digits.
    branch = mst("031440905") + "002"
    kept = check({"qty": "12,5", "total": "2.000.000", "issued": "2026-11-05",
                  "seller": f"{branch[:10]}-{branch[10:]}"}, locale="vi")
    assert kept == {"qty": "12.5", "total": 2_000_000, "issued": "2026-11-05", "seller": f"{branch[:10]}-002"}


def test_empty_optional_fields_are_left_out_and_a_required_one_is_asked_for(ctx):
    assert errors_of({"memo": "", "total": "  "}) == {"total": "Fill this in: it is required."}
    assert check({"total": "1000"}) == {"total": 1000}


def test_text_keeps_to_its_longest(ctx):
    assert check({"memo": "x" * 10, "total": "1000"})["memo"] == "x" * 10
    assert errors_of({"memo": "x" * 11, "total": "1000"})["memo"] == "At most 10 characters: this is 11."


def test_a_number_keeps_between_its_smallest_and_largest(ctx):
    assert errors_of({"qty": "0.4", "total": "1000"})["qty"] == "At least 0.5."
    assert errors_of({"qty": "100.01", "total": "1000"})["qty"] == "At most 100."
    assert check({"qty": "100", "total": "1000"})["qty"] == "100"
    assert "number in figures" in errors_of({"qty": "12,5", "total": "1000"})["qty"]  # English: a comma groups
    assert "number in figures" in errors_of({"qty": "abc", "total": "1000"})["qty"]


def test_an_amount_is_exact_in_the_currencys_minor_unit(ctx):
    # VND has no minor unit: any decimal is refused, even zeros ("2.000" in English would be two đồng).
    assert "without decimals" in errors_of({"total": "2.000"})["total"]
    assert "without decimals" in errors_of({"total": "1500.5"})["total"]
    assert errors_of({"total": "999"})["total"] == "At least 1,000."
    assert errors_of({"total": "5,000,001"})["total"] == "At most 5,000,000."
    # USD has cents: 199.50 dollars are 19950 cents; a third decimal is refused.
    usd = [Field("total", "Total", "amount")]
    assert check({"total": "199.50"}, currency="USD", fields=usd) == {"total": 19_950}
    assert check({"total": "199,50"}, currency="USD", locale="vi", fields=usd) == {"total": 19_950}
    assert "at most 2 decimals" in errors_of({"total": "199.505"}, currency="USD", fields=usd)["total"]
    # A credit note: an amount may be negative when no rule says otherwise.
    assert check({"total": "-250,000"}, fields=[Field("total", "Total", "amount")]) == {"total": -250_000}
    # The API sends the minor unit as an integer, never a float.
    assert check({"total": 2_500_000}) == {"total": 2_500_000}
    assert "without decimals" in errors_of({"total": 2500.0})["total"]


def test_a_date_keeps_between_its_earliest_and_latest(ctx):
    assert errors_of({"issued": "31/12/2025", "total": "1000"})["issued"] == "On or after 01/01/2026."
    assert errors_of({"issued": "2027-01-01", "total": "1000"})["issued"] == "On or before 31/12/2026."
    assert "day/month/year" in errors_of({"issued": "31/02/2026", "total": "1000"})["issued"]  # no such day
    assert "day/month/year" in errors_of({"issued": "Nov 5", "total": "1000"})["issued"]
    assert check({"issued": "1.6.2026", "total": "1000"})["issued"] == "2026-06-01"


def test_a_tax_code_must_have_its_check_digit(ctx):
    good = mst("030123456")
    assert check({"seller": good, "total": "1000"})["seller"] == good
    assert errors_of({"seller": wrong_digit(good), "total": "1000"})["seller"] == (
        "This tax code's last digit does not check: compare it with the document.")
    assert "10 digits" in errors_of({"seller": "12345", "total": "1000"})["seller"]
    assert "10 digits" in errors_of({"seller": "03012345AB", "total": "1000"})["seller"]


def test_a_choice_is_one_of_its_options(ctx):
    assert errors_of({"kind": "Biên lai", "total": "1000"})["kind"] == "Choose one of: Hoá đơn GTGT, Phiếu thu."
    required = [Field("kind", "Kind", "choice", required=True, options=("A", "B"))]
    assert errors_of({}, fields=required) == {"kind": "Choose one: this field is required."}


def test_every_error_is_given_at_once(ctx):
    errors = errors_of({"memo": "x" * 11, "qty": "0", "total": "", "issued": "2025-12-31",
                        "seller": wrong_digit(mst("010023348")), "kind": "C"})
    assert set(errors) == {"memo", "qty", "total", "issued", "seller", "kind"}


def test_the_api_is_told_of_a_key_the_template_does_not_have(ctx):
    with pytest.raises(FieldErrors) as refused:
        check_values(FIELDS, {"total": 1000, "colour": "red"}, currency="VND", locale="en", strict_keys=True)
    assert refused.value.errors == {"colour": "This template has no field colour."}


# --- a template's definition ---------------------------------------------------------------------------

def define(*rows: FieldInput) -> list[Field]:
    return check_definition(rows, currency="VND", locale="en")


def test_a_definition_is_read_from_its_rows_and_keys_are_made_from_labels(ctx):
    fields = define(FieldInput(label="Số hoá đơn", type="text", required=True, max_length="20"),
                    FieldInput(),  # an empty row is skipped
                    FieldInput(key="total", label="Total", type="amount", min="1,000", max="2,000,000"),
                    FieldInput(label="Kind", type="choice", options="A\n\nB\nA\n"),
                    FieldInput(label="Due", type="date", earliest="01/01/2026"))
    assert [f.key for f in fields] == ["so_hoa_don", "total", "kind", "due"]
    assert fields[0] == Field("so_hoa_don", "Số hoá đơn", "text", required=True, max_length=20)
    assert (fields[1].min, fields[1].max) == (1_000, 2_000_000)
    assert fields[2].options == ("A", "B")
    assert fields[3].earliest == "2026-01-01"
    assert key_from_label("Đơn giá (VNĐ)") == "don_gia_vnd" and key_from_label("2nd copy") == "f_2nd_copy"


def test_a_definition_is_refused_with_every_error_at_once(ctx):
    with pytest.raises(FieldErrors) as refused:
        define(FieldInput(key="total", label="Total", type="amount", min="5,000", max="1,000"),
               FieldInput(key="total", label="Total again", type="number"),
               FieldInput(key="Bad Key", label="Bad", type="text"),
               FieldInput(label="No type"),
               FieldInput(label="Kind", type="choice"),
               FieldInput(label="Long", type="text", max_length="5000"),
               FieldInput(label="When", type="date", earliest="2026-12-31", latest="2026-01-01"))
    assert set(refused.value.errors) == {"field-1-max", "field-2-key", "field-3-key", "field-4-type",
                                         "field-5-options", "field-6-max_length", "field-7-latest"}
    with pytest.raises(FieldErrors) as refused:
        define(FieldInput(), FieldInput())
    assert set(refused.value.errors) == {"fields"}
