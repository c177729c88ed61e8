"""Reading rendered pages as a person would: the fields of the forms with their errors, the visible text."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

# Attributes a person reads (or a screen reader says) besides the text itself.
READ_ATTRIBUTES = ("placeholder", "title", "aria-label", "alt", "data-confirm")


@dataclass
class Field:
    """One input, textarea or select as the page shows it: what is in it, and the errors under it."""

    tag: str
    attrs: dict[str, str | None]
    values: list[str] = field(default_factory=list)  # the value, the text, or the selected options
    errors: list[str] = field(default_factory=list)  # the macro's <small class="error" id="<id>-error-N">

    @property
    def value(self) -> str:
        return self.values[0] if self.values else ""


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.fields: dict[str, Field] = {}
        self.text: list[str] = []
        self._skip = 0  # inside <script>/<style>
        self._textarea: Field | None = None
        self._select: Field | None = None
        self._error_of: str | None = None  # the field an error <small> belongs to
        self._error: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("script", "style"):
            self._skip += 1
        self.text.extend(f" {a[name]} " for name in READ_ATTRIBUTES if a.get(name))
        if tag in ("input", "textarea", "select") and a.get("id"):
            found = Field(tag, a)
            self.fields[a["id"]] = found
            if tag == "input" and a.get("type") not in ("checkbox", "radio"):
                found.values.append(a.get("value") or "")
            elif tag == "textarea":
                self._textarea = found
            elif tag == "select":
                self._select = found
        elif tag == "option" and self._select is not None and "selected" in a:
            self._select.values.append(a.get("value") or "")
        elif tag == "small" and "error" in (a.get("class") or "").split() and "-error-" in (a.get("id") or ""):
            self._error_of, self._error = a["id"].rsplit("-error-", 1)[0], []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1
        elif tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None
        elif tag == "small" and self._error_of is not None:
            if self._error_of in self.fields:
                self.fields[self._error_of].errors.append("".join(self._error).strip())
            self._error_of = None

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._textarea is not None:
            self._textarea.values = ["".join([*self._textarea.values, data]).lstrip("\r\n")]
        if self._error_of is not None:
            self._error.append(data)
        self.text.append(data)


def read(html: str) -> tuple[dict[str, Field], str]:
    """The page's form fields by id, and its visible text (with the attributes people read) in one string."""
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return reader.fields, " ".join(" ".join(reader.text).split())


def fields(html: str) -> dict[str, Field]:
    return read(html)[0]


def visible_text(html: str) -> str:
    return read(html)[1]
