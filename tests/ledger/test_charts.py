"""The chart-of-accounts templates shipped as data files (``portal/ledger/charts/*.json``): pure checks, no database.

Each file is a template a tenant's chart is created from: codes unique, parents listed before their children, a
Vietnamese chart's sub-account codes extending their parent's, types and normal sides from the allowed sets, and
every role the software posts to (``roles``) naming a leaf of the chart.
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import date
from pathlib import Path

import pytest

CHARTS = Path(__file__).resolve().parents[2] / "portal" / "ledger" / "charts"
KEYS = ("vn_tt133", "vn_tt99", "generic")
VIETNAMESE = ("vn_tt133", "vn_tt99")
TYPES = {"asset", "liability", "equity", "revenue", "expense", "closing"}
NORMALS = {"debit", "credit"}
BRIEF_ROLES = {  # the functions the software needs, in every chart
    "cash", "bank", "receivable", "payable", "input_vat", "input_vat_assets", "output_vat", "revenue",
    "revenue_services", "expense", "cost_of_sales", "retained_earnings_current", "retained_earnings_prior",
    "pl_summary", "cit_payable", "pit_payable", "salaries_payable", "social_insurance", "health_insurance",
    "unemployment_insurance", "union_fee", "fixed_assets", "bank_fees",
}
ASCII_NAMES_OK = {"Cho vay"}  # Vietnamese names that really have no diacritics


def load(key: str) -> dict:
    return json.loads((CHARTS / f"{key}.json").read_text(encoding="utf-8"))


def by_code(chart: dict) -> dict[str, dict]:
    return {a["code"]: a for a in chart["accounts"]}


def parents(chart: dict) -> set[str]:
    return {a["parent"] for a in chart["accounts"] if a.get("parent")}


@pytest.fixture(scope="module", params=KEYS)
def chart(request: pytest.FixtureRequest) -> dict:
    return load(request.param)


def test_the_three_templates_ship():
    assert set(KEYS) <= {p.stem for p in CHARTS.glob("*.json")}


def test_top_level_keys_present_and_well_formed(chart):
    assert {"key", "name", "valid_from", "currency", "sources", "unconfirmed", "roles", "accounts"} <= chart.keys()
    assert chart["name"]["en"].strip() and chart["name"]["vi"].strip()
    date.fromisoformat(chart["valid_from"])
    assert re.fullmatch(r"[A-Z]{3}", chart["currency"])
    assert chart["sources"] and all(s["id"] and s["title"] and "url" in s for s in chart["sources"])
    assert len({s["id"] for s in chart["sources"]}) == len(chart["sources"])
    assert isinstance(chart["unconfirmed"], list) and all(isinstance(u, str) and u for u in chart["unconfirmed"])
    assert chart["accounts"]


def test_key_is_the_file_name(chart):
    """The service loads the templates by file stem and stores the key on the books."""
    assert (CHARTS / f"{chart['key']}.json").is_file()


def test_codes_unique_and_well_formed(chart):
    codes = [a["code"] for a in chart["accounts"]]
    assert len(codes) == len(set(codes))
    assert all(re.fullmatch(r"\d{3,6}", c) for c in codes)


def test_every_parent_exists_and_comes_first(chart):
    """``start_books`` creates accounts in file order, so a parent must precede its children."""
    seen: set[str] = set()
    for account in chart["accounts"]:
        if account.get("parent"):
            assert account["parent"] in seen, account["code"]
        seen.add(account["code"])


@pytest.mark.parametrize("key", VIETNAMESE)
def test_vietnamese_sub_accounts_extend_their_parent(key):
    chart = load(key)
    for account in chart["accounts"]:
        code = account["code"]
        if len(code) == 3:
            assert "parent" not in account, code
        else:
            parent = account["parent"]
            assert code.startswith(parent) and len(code) == len(parent) + 1, code


def test_types_and_normal_sides_from_the_allowed_sets(chart):
    for account in chart["accounts"]:
        assert account["type"] in TYPES and account["normal"] in NORMALS, account["code"]
    for code, account in by_code(chart).items():
        if account.get("parent"):
            parent = by_code(chart)[account["parent"]]
            assert (account["type"], account["normal"]) == (parent["type"], parent["normal"]), code


@pytest.mark.parametrize("key", VIETNAMESE)
def test_vietnamese_types_and_contra_accounts(key):
    accounts = by_code(load(key))
    expected = {"1": "asset", "2": "asset", "3": "liability", "4": "equity", "5": "revenue", "6": "expense",
                "7": "revenue", "8": "expense", "9": "closing"}
    assert all(a["type"] == expected[c[0]] for c, a in accounts.items())
    assert accounts["214"]["normal"] == accounts["2141"]["normal"] == "credit"  # accumulated depreciation
    assert accounts["229"]["normal"] == "credit"
    assert accounts["131"]["normal"] == "debit" and accounts["331"]["normal"] == "credit"
    assert accounts["911"]["type"] == "closing"


def test_roles_name_postable_leaves(chart):
    accounts, headings = by_code(chart), parents(chart)
    for role, code in chart["roles"].items():
        assert code in accounts, (role, code)
        assert code not in headings, f"{role} → {code} has sub-accounts: lines post to leaves"


def test_the_three_charts_have_the_same_roles():
    role_sets = [set(load(key)["roles"]) for key in KEYS]
    assert role_sets[0] == role_sets[1] == role_sets[2]
    assert role_sets[0] >= BRIEF_ROLES


def test_role_accounts_have_the_expected_type():
    expected = {"cash": "asset", "bank": "asset", "receivable": "asset", "payable": "liability",
                "input_vat": "asset", "input_vat_assets": "asset", "output_vat": "liability", "revenue": "revenue",
                "revenue_services": "revenue", "expense": "expense", "cost_of_sales": "expense",
                "retained_earnings_current": "equity", "retained_earnings_prior": "equity", "pl_summary": "closing",
                "cit_payable": "liability", "pit_payable": "liability", "salaries_payable": "liability",
                "social_insurance": "liability", "health_insurance": "liability",
                "unemployment_insurance": "liability", "union_fee": "liability", "fixed_assets": "asset",
                "bank_fees": "expense"}
    for key in KEYS:
        chart = load(key)
        accounts = by_code(chart)
        for role, typ in expected.items():
            assert accounts[chart["roles"][role]]["type"] == typ, (key, role)


def test_names_present_nfc_and_within_the_column():
    for key in KEYS:
        for account in load(key)["accounts"]:
            for lang in ("vi", "en"):
                name = account["name"][lang]
                assert name.strip() == name and name, (key, account["code"], lang)
                assert unicodedata.is_normalized("NFC", name) and len(name) <= 200, (key, account["code"])


@pytest.mark.parametrize("key", VIETNAMESE)
def test_vietnamese_names_carry_their_diacritics(key):
    for account in load(key)["accounts"]:
        vi = account["name"]["vi"]
        assert not vi.isascii() or vi in ASCII_NAMES_OK, (account["code"], vi)


SPOT_CHECKS = {  # exact text of the account lists (Appendix 1 of Circular 133, Appendix II of Circular 99)
    "vn_tt133": {
        "111": "Tiền mặt", "1121": "Tiền Việt Nam", "131": "Phải thu của khách hàng",
        "1331": "Thuế GTGT được khấu trừ của hàng hóa, dịch vụ", "331": "Phải trả cho người bán",
        "3331": "Thuế giá trị gia tăng phải nộp", "33311": "Thuế GTGT đầu ra", "3334": "Thuế thu nhập doanh nghiệp",
        "3335": "Thuế thu nhập cá nhân", "334": "Phải trả người lao động", "3385": "Bảo hiểm thất nghiệp",
        "3386": "Nhận ký quỹ, ký cược", "4212": "Lợi nhuận sau thuế chưa phân phối năm nay",
        "642": "Chi phí quản lý kinh doanh", "6422": "Chi phí quản lý doanh nghiệp",
        "911": "Xác định kết quả kinh doanh",
    },
    "vn_tt99": {
        "112": "Tiền gửi không kỳ hạn", "131": "Phải thu của khách hàng", "155": "Sản phẩm",
        "215": "Tài sản sinh học", "242": "Chi phí chờ phân bổ", "331": "Phải trả cho người bán",
        "332": "Phải trả cổ tức, lợi nhuận", "33311": "Thuế GTGT đầu ra", "3386": "Bảo hiểm thất nghiệp",
        "3387": "Doanh thu chờ phân bổ", "4211": "Lợi nhuận sau thuế chưa phân phối lũy kế đến cuối năm trước",
        "641": "Chi phí bán hàng", "642": "Chi phí quản lý doanh nghiệp",
    },
}


@pytest.mark.parametrize("key", VIETNAMESE)
def test_spot_checked_names(key):
    accounts = by_code(load(key))
    for code, name in SPOT_CHECKS[key].items():
        assert accounts[code]["name"]["vi"] == name, code


def test_regime_traps():
    """Same number, different account: map by regime, never by number alone."""
    tt133, tt99 = by_code(load("vn_tt133")), by_code(load("vn_tt99"))
    assert load("vn_tt133")["roles"]["unemployment_insurance"] == "3385"
    assert load("vn_tt99")["roles"]["unemployment_insurance"] == "3386"
    assert "3385" not in tt99  # Circular 200's 'payable on equitisation' is not carried into Circular 99
    assert not {"521", "621", "622", "627", "641"} & tt133.keys()  # the SME regime has none of these
    assert {"521", "621", "622", "627", "641", "215", "332"} <= tt99.keys()
    assert not {"611", "631"} & tt99.keys() and {"611", "631"} <= tt133.keys()
    assert tt99["521"]["type"] == "revenue" and tt99["521"]["normal"] == "debit"


@pytest.mark.parametrize(("key", "level_one"), [("vn_tt133", 49), ("vn_tt99", 71)])
def test_level_one_counts(key, level_one):
    assert sum(len(a["code"]) == 3 for a in load(key)["accounts"]) == level_one


def test_unconfirmed_mentions_circular_46_for_the_sme_chart():
    assert any("46/2025" in item for item in load("vn_tt133")["unconfirmed"])
