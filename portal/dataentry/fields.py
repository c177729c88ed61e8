"""The fields of a data-entry template: their types, their rules, and how a value typed is checked and kept.

Pure functions, no database: a template's definition is checked by ``check_definition`` (keys unique, at
least one field, rules that make sense for the type) and every value keyed by ``check_values``, which
returns every error at once, keyed by field, with a sentence that says what to type.

What each type keeps (the sealed JSON of a record, and the API's values):

==========  ==========================================================================================
text        the text, stripped; at most ``max_length`` characters (``TEXT_MAX`` without a rule)
number      an exact decimal as a string ("12.5"), between ``min`` and ``max`` when they are set
amount      an integer in the tenant's currency's minor unit (VND has none: 2.000.000 ₫ is 2000000;
            USD 199.50 is 19950), between ``min`` and ``max`` (minor units too)
date        ISO ("2026-11-05"), typed as 05/11/2026 (day first, as Vietnamese documents write it) or
            2026-11-05, between ``earliest`` and ``latest``
tax_code    a Vietnamese tax code (MST) whose check digit is right (``stdnum.vn.mst``), kept as
            0312687878 or 0312687878-001 for a branch
choice      one of the template's ``options``, exactly as the template spells it
==========  ==========================================================================================

People type numbers and amounts in their own language ("2.000.000" or "12,5" in Vietnamese, "2,000,000"
or "12.5" in English), parsed strictly with Babel: a misplaced separator is refused, never guessed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from babel.numbers import NumberFormatError, format_decimal, get_decimal_symbol, get_group_symbol, parse_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.billing.render import format_money, minor_units

TYPES = ("text", "number", "amount", "date", "tax_code", "choice")
TYPE_LABELS = {"text": _l("Text"), "number": _l("Number"), "amount": _l("Amount of money"), "date": _l("Date"),
               "tax_code": _l("Tax code (MST)"), "choice": _l("Choice from a list")}
KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")
MAX_FIELDS = 60
LABEL_MAX = 80
TEXT_MAX = 1000  # a text field's length without a rule of its own, and the most a rule may allow
OPTION_MAX = 80
MAX_OPTIONS = 100
LIMIT = Decimal(10) ** 15  # far above any real figure, far below bigint in minor units
NUMBER_PLACES = 6
DATE_FORMATS = (re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})"),)  # year first
DAY_FIRST = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")


@dataclass(frozen=True)
class Field:
    """One field of a template, as the template's JSONB keeps it."""

    key: str
    label: str
    type: str
    required: bool = False
    max_length: int | None = None  # text
    min: str | int | None = None  # number: a decimal string; amount: minor units
    max: str | int | None = None
    earliest: str | None = None  # date, ISO
    latest: str | None = None
    options: tuple[str, ...] = ()  # choice

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "label": self.label, "type": self.type, "required": self.required}
        for name in ("max_length", "min", "max", "earliest", "latest"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.options:
            out["options"] = list(self.options)
        return out

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Field:
        return cls(key=data["key"], label=data["label"], type=data["type"], required=bool(data.get("required")),
                   max_length=data.get("max_length"), min=data.get("min"), max=data.get("max"),
                   earliest=data.get("earliest"), latest=data.get("latest"),
                   options=tuple(data.get("options") or ()))

    @property
    def type_label(self) -> str:
        return str(TYPE_LABELS.get(self.type, self.type))


def fields_of(definition: Sequence[Mapping[str, Any]]) -> list[Field]:
    """A template's stored fields (``Template.fields``) as ``Field``s, in their order."""
    return [Field.of(item) for item in definition]


class FieldErrors(ValueError):
    """Every error found, by field key (values) or by ``field-<n>-<part>`` (a definition)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(" ".join(errors.values()))
        self.errors = errors


# --- numbers, amounts and dates as people type them ---------------------------------------------------

def parse_number(raw: object, locale: str) -> Decimal:
    """A number typed in ``locale`` (its own group and decimal symbols), with an optional minus sign; a JSON
    number (int or float) as it is. Raises ``ValueError`` for anything else."""
    if isinstance(raw, bool):
        raise ValueError(raw)
    if isinstance(raw, int | Decimal):
        value = Decimal(raw)
    elif isinstance(raw, float):
        value = Decimal(repr(raw))
    else:
        text = str(raw if raw is not None else "").strip().replace("\u00a0", "").replace(" ", "")
        negative = text[:1] in ("-", "\u2212")
        text = text[1:] if negative else text
        allowed = set("0123456789") | {get_group_symbol(locale), get_decimal_symbol(locale)}
        if not text or not text[0].isdigit() or not set(text) <= allowed:
            raise ValueError(text)
        try:
            value = parse_decimal(text, locale=locale, strict=True)
        except NumberFormatError:
            raise ValueError(text) from None
        value = -value if negative else value
    if not value.is_finite() or abs(value) >= LIMIT:
        raise ValueError(raw)
    return value


def _places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def parse_amount(raw: object, currency: str, locale: str) -> int:
    """An amount typed in ``currency``'s major unit in ``locale`` ("2.000.000" VND in Vietnamese, "199.50"
    USD in English), or a JSON integer already in the minor unit, as an integer in the minor unit. More
    decimals than the currency has are refused (VND has none). Raises ``ValueError``."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        if abs(raw) >= LIMIT * 100:
            raise ValueError(raw)
        return raw
    if isinstance(raw, float):
        raise ValueError(raw)  # the API sends amounts in the minor unit, as integers
    value = parse_number(raw, locale)
    places = minor_units(currency)
    if _places(value) > places:  # even zeros: "2.000" typed in English for VND would be two đồng
        raise ValueError(raw)
    return int(value.scaleb(places))


def parse_date(raw: object) -> date:
    """A date typed as 05/11/2026 (day, month, year; also with dots or dashes) or 2026-11-05, or a
    ``date``. Raises ``ValueError``."""
    if isinstance(raw, date):
        return raw
    text = str(raw if raw is not None else "").strip()
    if match := DATE_FORMATS[0].fullmatch(text):
        year, month, day = (int(g) for g in match.groups())
    elif match := DAY_FIRST.fullmatch(text):
        day, month, year = (int(g) for g in match.groups())
    else:
        raise ValueError(text)
    return date(year, month, day)  # ValueError for 31/02/2026


def number_text(value: Decimal | str | int, locale: str) -> str:
    """A number as a person reads and types it in ``locale`` (no grouping, its decimals as kept)."""
    value = Decimal(value)
    pattern = "0" + ("." + "0" * _places(value) if _places(value) else "")
    return format_decimal(value, format=pattern, locale=locale, decimal_quantization=False)


def amount_text(amount: int, currency: str, locale: str) -> str:
    """An amount in the minor unit as a form field shows it: the major unit, grouped, with the currency's
    decimals ("2.000.000" VND in Vietnamese, "199.50" USD in English)."""
    places = minor_units(currency)
    pattern = "#,##0" + ("." + "0" * places if places else "")
    return format_decimal(Decimal(amount).scaleb(-places), format=pattern, locale=locale, decimal_quantization=False)


def date_text(value: str | date) -> str:
    """A kept date as it is typed: day first (05/11/2026)."""
    day = value if isinstance(value, date) else date.fromisoformat(value)
    return day.strftime("%d/%m/%Y")


# --- a template's definition -------------------------------------------------------------------------

@dataclass(frozen=True)
class FieldInput:
    """One field of a template as typed on the template's form (every part a string, as posted)."""

    key: str = ""
    label: str = ""
    type: str = ""
    required: bool = False
    max_length: str = ""
    min: str = ""
    max: str = ""
    earliest: str = ""
    latest: str = ""
    options: str = ""  # one per line

    @property
    def empty(self) -> bool:
        return not any((self.key.strip(), self.label.strip()))


def key_from_label(label: str) -> str:
    """A field's key made from its label when none is typed: "Số hoá đơn" → "so_hoa_don"."""
    text = unicodedata.normalize("NFKD", label.replace("đ", "d").replace("Đ", "D"))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    key = re.sub(r"[^a-z0-9]+", "_", text).strip("_")
    if key and not key[0].isalpha():
        key = "f_" + key
    return key[:40].rstrip("_")


def check_definition(rows: Sequence[FieldInput], *, currency: str, locale: str) -> list[Field]:
    """The fields of a template from what was typed (empty rows skipped), or ``FieldErrors`` with every
    error at once (``field-<n>-<part>``, n counting the rows as shown, from 1; ``fields`` for the whole)."""
    errors: dict[str, str] = {}
    out: list[Field] = []
    seen: dict[str, int] = {}
    for n, row in enumerate(rows, start=1):
        if row.empty:
            continue
        where = f"field-{n}"
        label = " ".join(row.label.split())
        key = row.key.strip().lower() or key_from_label(label)
        if not 1 <= len(label) <= LABEL_MAX:
            errors[f"{where}-label"] = _("Give the field a label people read (1 to %(max)d characters).",
                                         max=LABEL_MAX)
        if not KEY.fullmatch(key):
            errors[f"{where}-key"] = _("A key is lower-case letters, digits and underscores, starting with a "
                                       "letter (at most 40), for example invoice_number.")
        elif key in seen:
            errors[f"{where}-key"] = _("Field %(n)d already has the key %(key)s: each field needs its own.",
                                       n=seen[key], key=key)
        else:
            seen[key] = n
        if row.type not in TYPES:
            errors[f"{where}-type"] = _("Choose the type of the field.")
            continue
        rules: dict[str, Any] = {}
        try:
            rules = _rules(row, currency=currency, locale=locale)
        except FieldErrors as exc:
            errors.update({f"{where}-{part}": message for part, message in exc.errors.items()})
        out.append(Field(key=key, label=label, type=row.type, required=row.required, **rules))
    if not out and not errors:
        errors["fields"] = _("A template needs at least one field: give it a label and a type.")
    if len(out) > MAX_FIELDS:
        errors["fields"] = _("A template has at most %(max)d fields.", max=MAX_FIELDS)
    if errors:
        raise FieldErrors(errors)
    return out


def _rules(row: FieldInput, *, currency: str, locale: str) -> dict[str, Any]:
    """The rules of one field's type from what was typed (those of other types are ignored)."""
    errors: dict[str, str] = {}
    rules: dict[str, Any] = {}
    if row.type == "text":
        if row.max_length.strip():
            if not re.fullmatch(r"[0-9]{1,5}", row.max_length.strip()) or not 1 <= int(row.max_length) <= TEXT_MAX:
                errors["max_length"] = _("The longest text allowed is a whole number from 1 to %(max)d.",
                                         max=TEXT_MAX)
            else:
                rules["max_length"] = int(row.max_length)
    elif row.type in ("number", "amount"):
        for part in ("min", "max"):
            typed = getattr(row, part).strip()
            if not typed:
                continue
            try:
                rules[part] = (parse_amount(typed, currency, locale) if row.type == "amount"
                               else str(parse_number(typed, locale)))
            except ValueError:
                errors[part] = (_money_hint(currency, locale) if row.type == "amount" else _number_hint(locale))
        if "min" in rules and "max" in rules and Decimal(rules["min"]) > Decimal(rules["max"]):
            errors["max"] = _("The largest value allowed is smaller than the smallest: swap them.")
    elif row.type == "date":
        for part in ("earliest", "latest"):
            typed = getattr(row, part).strip()
            if not typed:
                continue
            try:
                rules[part] = parse_date(typed).isoformat()
            except ValueError:
                errors[part] = _("Type a date as day/month/year, for example 05/11/2026.")
        if "earliest" in rules and "latest" in rules and rules["earliest"] > rules["latest"]:
            errors["latest"] = _("The latest date allowed is before the earliest: swap them.")
    elif row.type == "choice":
        options = list(dict.fromkeys(" ".join(line.split()) for line in row.options.splitlines() if line.strip()))
        if not options:
            errors["options"] = _("List the choices, one per line.")
        elif len(options) > MAX_OPTIONS or any(len(o) > OPTION_MAX for o in options):
            errors["options"] = _("At most %(count)d choices, each at most %(max)d characters.",
                                  count=MAX_OPTIONS, max=OPTION_MAX)
        else:
            rules["options"] = tuple(options)
    if errors:
        raise FieldErrors(errors)
    return rules


def rule_inputs(item: Field, *, currency: str, locale: str) -> dict[str, str]:
    """A field's rules as its row on the template's form shows them (the inverse of ``check_definition``)."""
    out = {"key": item.key, "label": item.label, "type": item.type, "required": "1" if item.required else "",
           "max_length": str(item.max_length or ""), "min": "", "max": "", "earliest": "", "latest": "",
           "options": "\n".join(item.options)}
    for part in ("min", "max"):
        value = getattr(item, part)
        if value is not None:
            out[part] = amount_text(int(value), currency, locale) if item.type == "amount" else number_text(value,
                                                                                                           locale)
    for part in ("earliest", "latest"):
        if getattr(item, part):
            out[part] = date_text(getattr(item, part))
    return out


def rules_sentence(item: Field, *, currency: str, locale: str) -> str:
    """What a field takes, in words, for the hint under it ("From 01/01/2026 to 31/12/2026")."""
    parts: list[str] = []
    if item.type == "text" and item.max_length:
        parts.append(_("At most %(max)d characters.", max=item.max_length))
    elif item.type in ("number", "amount"):
        low, high = (None if v is None else _shown_number(item, v, currency, locale) for v in (item.min, item.max))
        if low is not None and high is not None:
            parts.append(_("From %(low)s to %(high)s.", low=low, high=high))
        elif low is not None:
            parts.append(_("At least %(low)s.", low=low))
        elif high is not None:
            parts.append(_("At most %(high)s.", high=high))
        if item.type == "amount":
            parts.append(_("In %(currency)s.", currency=currency))
    elif item.type == "date":
        parts.append(_("Day/month/year."))
        if item.earliest and item.latest:
            parts.append(_("From %(low)s to %(high)s.", low=date_text(item.earliest), high=date_text(item.latest)))
        elif item.earliest:
            parts.append(_("On or after %(low)s.", low=date_text(item.earliest)))
        elif item.latest:
            parts.append(_("On or before %(high)s.", high=date_text(item.latest)))
    elif item.type == "tax_code":
        parts.append(_("10 digits, or 10 and a branch of 3."))
    return " ".join(parts)


def _shown_number(item: Field, value: object, currency: str, locale: str) -> str:
    return amount_text(int(value), currency, locale) if item.type == "amount" else number_text(value, locale)


def _money_hint(currency: str, locale: str) -> str:
    example = amount_text(2_000_000 if minor_units(currency) == 0 else 19_950, currency, locale)
    if minor_units(currency) == 0:
        return _("Type the amount in %(currency)s in figures, without decimals, for example %(example)s.",
                 currency=currency, example=example)
    return _("Type the amount in %(currency)s in figures, with at most %(places)d decimals, for example "
             "%(example)s.", currency=currency, places=minor_units(currency), example=example)


def _number_hint(locale: str) -> str:
    return _("Type a number in figures, for example %(example)s.", example=number_text(Decimal("1250.5"), locale))


# --- values keyed -------------------------------------------------------------------------------------

def check_values(definition: Sequence[Field], raw: Mapping[str, object], *, currency: str, locale: str,
                 strict_keys: bool = False) -> dict[str, Any]:
    """The values to keep for a record (``raw``: what was typed, or the API's JSON values), by key; empty
    optional fields are left out. ``FieldErrors`` holds every error at once, by field key. ``strict_keys``
    (the API) refuses a key the template does not have."""
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    keys = {f.key for f in definition}
    if strict_keys:
        for key in raw:
            if key not in keys:
                errors[str(key)[:60]] = _("This template has no field %(key)s.", key=str(key)[:60])
    for item in definition:
        value = raw.get(item.key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if item.required:
                errors[item.key] = (_("Choose one: this field is required.") if item.type == "choice"
                                    else _("Fill this in: it is required."))
            continue
        try:
            out[item.key] = _check(item, value, currency=currency, locale=locale)
        except FieldErrors as exc:
            errors[item.key] = exc.errors[item.key]
    if errors:
        raise FieldErrors(errors)
    return out


def _check(item: Field, value: object, *, currency: str, locale: str) -> Any:  # noqa: C901 - one branch a type
    def refuse(message: str) -> FieldErrors:
        return FieldErrors({item.key: message})

    if item.type == "text":
        if not isinstance(value, str):
            raise refuse(_("Type text here."))
        text = value.strip()
        limit = item.max_length or TEXT_MAX
        if len(text) > limit:
            raise refuse(_("At most %(max)d characters: this is %(count)d.", max=limit, count=len(text)))
        return text
    if item.type in ("number", "amount"):
        try:
            number = (parse_amount(value, currency, locale) if item.type == "amount" else parse_number(value, locale))
        except ValueError:
            raise refuse(_money_hint(currency, locale) if item.type == "amount" else _number_hint(locale)) from None
        if item.type == "number" and _places(number) > NUMBER_PLACES:
            raise refuse(_("At most %(places)d decimals.", places=NUMBER_PLACES))
        if item.min is not None and Decimal(number) < Decimal(item.min):
            raise refuse(_("At least %(low)s.", low=_shown_number(item, item.min, currency, locale)))
        if item.max is not None and Decimal(number) > Decimal(item.max):
            raise refuse(_("At most %(high)s.", high=_shown_number(item, item.max, currency, locale)))
        return number if item.type == "amount" else str(number)
    if item.type == "date":
        try:
            day = parse_date(value)
        except ValueError:
            raise refuse(_("Type a date as day/month/year, for example 05/11/2026.")) from None
        if item.earliest and day.isoformat() < item.earliest:
            raise refuse(_("On or after %(day)s.", day=date_text(item.earliest)))
        if item.latest and day.isoformat() > item.latest:
            raise refuse(_("On or before %(day)s.", day=date_text(item.latest)))
        return day.isoformat()
    if item.type == "tax_code":
        return _tax_code(str(value), refuse)
    if item.type == "choice":
        text = " ".join(str(value).split())
        for option in item.options:
            if option.casefold() == text.casefold():
                return option
        raise refuse(_("Choose one of: %(options)s.", options=", ".join(item.options)))
    raise refuse(_("This field's type is unknown."))


def _tax_code(value: str, refuse: Any) -> str:
    from stdnum.exceptions import InvalidChecksum, ValidationError
    from stdnum.vn import mst

    try:
        compact = mst.validate(value)
    except InvalidChecksum:
        raise refuse(_("This tax code's last digit does not check: compare it with the document.")) from None
    except ValidationError:
        raise refuse(_("A tax code is 10 digits, or 10 and a branch of 3 (0101234567-001).")) from None
    return mst.format(compact)


# --- values shown -------------------------------------------------------------------------------------

def typed_text(item: Field, value: Any, *, currency: str, locale: str) -> str:
    """A kept value as its field on the form shows it, to be corrected and saved again."""
    if value is None:
        return ""
    if item.type == "amount":
        return amount_text(int(value), currency, locale)
    if item.type == "number":
        return number_text(value, locale)
    if item.type == "date":
        return date_text(value)
    return str(value)


def shown(item: Field, value: Any, *, currency: str, locale: str) -> str:
    """A kept value as a page shows it (amounts with their currency, dates day first)."""
    if value is None:
        return ""
    if item.type == "amount":
        return format_money(int(value), currency, locale)
    return typed_text(item, value, currency=currency, locale=locale)


def cell(item: Field, value: Any, *, currency: str) -> object:
    """A kept value as a spreadsheet cell: amounts and numbers as numbers (the major unit), dates as dates."""
    if value is None:
        return ""
    if item.type == "amount":
        return Decimal(int(value)).scaleb(-minor_units(currency))
    if item.type == "number":
        return Decimal(value)
    if item.type == "date":
        return date.fromisoformat(value)
    return str(value)
