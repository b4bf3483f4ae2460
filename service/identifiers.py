"""Identifiers read one way, wherever they come from: DIN, PAN, CIN, LLPIN and phone numbers.

Every entry point goes through here: the webhook and the manual API (a CIN), the command line
(`contacts forget`), Attestr's answers (`indexId`, `mobileNumber`) and Airtable's cells (a CIN
typed by a person, a lookup's list). Whatever arrives is read the same way before any check:

* one value: from a list, the first usable element; a number as its digits (a spreadsheet's
  `9845067321.0` too);
* markup and HTML entities removed; invisible characters (zero-width spaces and joiners, the
  byte-order mark, soft hyphens, direction marks: Unicode's format characters) and control
  characters removed; every kind of space (the no-break space too) one plain space;
* for identifiers, fullwidth forms read as ASCII (`ＵＡＢ１` is `UAB1`) and the digits of every
  script as ASCII digits (`०५६७८९१२` is `05678912`). Superscripts and circled numbers are not
  digits (a footnote mark `¹` must not lengthen a DIN).

Sources: a DIN is eight digits (Companies Act 2013, s. 153; MCA's DIN format); a PAN is ten
characters, five letters, four digits, one letter (Income Tax Department, "Permanent Account
Number"); a CIN is 21 characters and an LLPIN `AAA-1234` (MCA); phones are read by phonenumbers
with India as the default region.
"""

from __future__ import annotations

import html
import itertools
import re
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, TypeVar

import phonenumbers
from phonenumbers import PhoneNumberType

T = TypeVar("T")
MAX_TEXT = 500

# An HTML tag; `<name@example.com>` is an address in angle brackets, not a tag.
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")
_SPACE = re.compile(r"\s+")
_PRINTABLE_ASCII = re.compile(r"^[\x20-\x7e]*$")
_INTEGRAL_FLOAT = re.compile(r"^(\d+)\.0+$")
# ASCII only: `\d` alone also matches other scripts' digits.
_DIN = re.compile(r"^\d{1,8}$", re.ASCII)
_PAN = re.compile(r"^[A-Z]{5}\d{4}[A-Z]$", re.ASCII)
_CIN = re.compile(r"^[LU]\d{5}[A-Z]{2}\d{4}[A-Z]{3}\d{6}$", re.ASCII)
_LLPIN = re.compile(r"^[A-Z]{3}-\d{4}$", re.ASCII)
_PHONE_TYPES = {PhoneNumberType.MOBILE: "Mobile", PhoneNumberType.FIXED_LINE: "Landline"}
_WRITTEN_COUNTRY_CODE = re.compile(r"^0+91(\d{10})$")
_PLAIN_PHONE = re.compile(r"^[0-9 +()./-]*$")  # nothing but what phone numbers are written with


def _visible(char: str) -> str:
    """A character as it counts: control and format characters are nothing, spaces a space."""
    category = unicodedata.category(char)
    if category in ("Cc", "Cf", "Cs", "Co", "Cn") and char not in "\t\n\r":
        return ""
    return " " if category in ("Zs", "Zl", "Zp") or char in "\t\n\r" else char


def inert(text: str) -> str:
    """`text` safe to print at a terminal, on one line: control and format characters removed
    (an escape sequence cannot clear the screen or recolour what follows, a bidi override cannot
    reorder it), line breaks and tabs a space (a message cannot forge a line of its own). Every
    message from Airtable, Attestr or the database passes it before it is shown."""
    return text if _PRINTABLE_ASCII.fullmatch(text) else "".join(map(_visible, text))


def plain(value: Any, max_len: int = MAX_TEXT) -> str | None:
    """A printable, single-spaced string from anything a caller or a service might send, or
    None: the first element of a list, a number as text, markup, invisible and control
    characters removed. Letters and digits are left as written (names and addresses)."""
    if isinstance(value, list | tuple):  # the first element with something written in it
        return next((t for v in value if not isinstance(v, list | tuple) and (t := plain(v, max_len))), None)
    if value is None or isinstance(value, bool | dict):
        return None
    if isinstance(value, float):
        if not value.is_integer():
            return str(value)[:max_len]
        value = int(value)
    text = str(value)[: max_len * 4]  # cleaning shortens it: no more is looked at than can count
    if not _PRINTABLE_ASCII.match(text):
        text = "".join(map(_visible, text))
    if "<" in text or "&" in text:
        text = html.unescape(_TAG.sub(" ", text))
        text = "".join(map(_visible, text)) if not _PRINTABLE_ASCII.match(text) else text
    return _SPACE.sub(" ", text).strip()[:max_len] or None


def _ascii(char: str) -> str:
    if "\uff01" <= char <= "\uff5e":  # fullwidth ASCII
        return chr(ord(char) - 0xFEE0)
    return str(unicodedata.decimal(char)) if char.isdecimal() else char


def folded(value: Any, max_len: int = MAX_TEXT) -> str | None:
    """`plain`, then fullwidth forms and every script's decimal digits read as ASCII."""
    text = plain(value, max_len)
    return text if text is None or text.isascii() else "".join(map(_ascii, text))


def _first(value: Any, read: Callable[[Any], T | None]) -> T | None:
    """Of a list, the first element `read` makes something of; else `read` of the value."""
    if isinstance(value, list | tuple):
        return next((found for v in value if (found := read(v)) is not None), None)
    return read(value)


def _din(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    text = folded(value, 50)
    text = text.replace(" ", "") if text else None
    # A DIN that arrived as a number lost its leading zeros: they are put back.
    return text.zfill(8) if text and _DIN.match(text) and int(text) > 0 else None


def din(value: Any) -> str | None:
    """A Director Identification Number: eight ASCII digits, or None."""
    return _first(value, _din)


def _pan(value: Any) -> str | None:
    text = folded(value, 50)
    text = text.replace(" ", "").upper() if text else None
    return text if text and _PAN.match(text) else None


def pan(value: Any) -> str | None:
    """A Permanent Account Number: five letters, four digits, one letter (upper case), or None."""
    return _first(value, _pan)


def identity(value: Any) -> tuple[str | None, str | None]:
    """(DIN, PAN) from Attestr's `indexId`: a DIN for a director, a PAN for a signatory who is
    not one (a company secretary, a CFO); at most one of the two."""
    found = din(value)
    return (found, None) if found else (None, pan(value))


def _cin(value: Any) -> str | None:
    text = folded(value, 60)
    text = text.replace(" ", "").upper() if text else None
    return text if text and (_CIN.match(text) or _LLPIN.match(text)) else None


def cin(value: Any) -> str | None:
    """A CIN (`U72200KA2015PTC081234`) or LLPIN (`AAB-1234`) in canonical form, or None."""
    return _first(value, _cin)


# Written where nothing was known (MCA filings and older tables): "NA", "N/A", "nil", "Not
# Available"… compared with case, spaces and punctuation left out.
_PLACEHOLDER_WORDS = frozenset(
    {
        "na", "nil", "none", "null", "nan", "notavailable", "notapplicable", "notgiven",
        "notprovided", "notknown", "unknown", "nodata", "tbd", "tba",
    }
)  # fmt: skip


def placeholder(text: str | None) -> bool:
    """Whether a value only stands where nothing was known: a word like "NA", "nil", "Not
    Available", only punctuation ("-", "--"), or only masking letters ("XXXX")."""
    if not text:
        return False
    letters = re.sub(r"[\W_]", "", text).casefold()
    return not letters or letters in _PLACEHOLDER_WORDS or set(letters) == {"x"}


class Phone(NamedTuple):
    raw: str | None
    e164: str | None = None
    type: str | None = None


def _valid(text: str) -> tuple[phonenumbers.PhoneNumber, PhoneNumberType] | None:
    """The number and its type when phonenumbers considers it valid. The type is the same test
    as `is_valid_number` (UNKNOWN means not valid), so it is done once."""
    try:
        number = phonenumbers.parse(text, "IN")
    except phonenumbers.NumberParseException:
        return None
    kind = phonenumbers.number_type(number)
    return (number, kind) if kind != PhoneNumberType.UNKNOWN else None


# Words written beside a number (labels), not part of it.
_LABEL = re.compile(
    r"\b(?:tel(?:ephone)?|ph(?:one)?|mob(?:ile)?|cell|landline|off(?:ice)?|res(?:idence)?|"
    r"contact|no|number|ext|extn|or|and|[mtor])\b\.?:?",
    re.IGNORECASE,
)
# A number labelled as a fax ("Fax: 022 2345 6789", "F. 022…"): not a contact's phone.
_FAX_LABEL = re.compile(r"\b(?:fax|facsimile|f)\b\.?\s*(?:no\.?)?\s*[:.-]?\s*", re.IGNORECASE)
_NEXT_GROUP = re.compile(r"[\s().-]*(\+?\d+)", re.ASCII)
# What is left after labels are taken out: a letter, or a digit masked by a filing ("98XXXXXX45",
# "98450 *****"), means a number cannot be read (phonenumbers would read letters as keypad digits).
_NOT_DIGITS = re.compile(r"[^\W\d_]|[*•●#]")
_DIGIT_GROUP = re.compile(r"\+?\d+", re.ASCII)
_DIGIT = re.compile(r"\d")
_ASCENDING, _DESCENDING = "0123456789" * 2, "9876543210" * 2


def placeholder_number(national: str) -> bool:
    """A number written where none was known: one digit repeated ("9999999999") or a run of
    digits ("1234567890", "9876543210")."""
    return len(set(national)) == 1 or national in _ASCENDING or national in _DESCENDING


def _without_faxes(text: str) -> str:
    """The field with each number labelled as a fax taken out: the digit groups after the label,
    up to the first that completes a valid number (a number written after it with only a space
    between is another)."""
    while label := _FAX_LABEL.search(text):
        end, digits = label.end(), ""
        while group := _NEXT_GROUP.match(text, end):
            digits, end = digits + group.group(1), group.end()
            if _valid(digits):
                break
        text = f"{text[: label.start()]} {text[end:]}"
    return text


def _digit_groups(text: str) -> Iterator[str]:
    """Runs of the field's digit groups, from the left, shortest first."""
    groups = _DIGIT_GROUP.findall(text)
    for start in range(len(groups)):
        for end in range(start + 1, len(groups) + 1):
            yield "".join(groups[start:end])


def _parsed_phone(text: str, plain: bool) -> tuple[phonenumbers.PhoneNumber, PhoneNumberType] | bool | None:
    """The first real number of a field: the field as a whole, else digit groups read from the
    left, as many together as make a valid number (so any separator between two numbers, even a
    hyphen, ends the first). `plain`: the field holds only digits and separators (no label to
    read past). False: only placeholders; None: none."""
    if not plain:
        text = _LABEL.sub(" ", _without_faxes(text))
        if _NOT_DIGITS.search(text):
            return None
    candidates = itertools.chain([text], _digit_groups(text))
    placeholders = False
    for candidate in candidates:
        if len(candidate) > 20:
            continue
        found = _valid(candidate)
        # "091 98200 12345": the country code written after a trunk zero.
        written = (
            None if found else _WRITTEN_COUNTRY_CODE.match(re.sub(r"[^\d+]", "", candidate, flags=re.ASCII))
        )
        if written:
            found = _valid(f"+91{written.group(1)}")
        if found and placeholder_number(phonenumbers.national_significant_number(found[0])):
            placeholders, found = True, None
        if found:
            return found
    return False if placeholders else None


# ITU-T E.164 §6.1: at most 15 digits, the country code included.
E164_MAX_DIGITS = 15


def _phone(value: Any) -> Phone:
    simple = isinstance(value, str) and bool(_PLAIN_PHONE.match(value))
    if simple:
        raw = " ".join(value.split())[:100] or None  # the common case needs no cleaning
        text = raw
    else:
        raw = plain(value, 100)
        text = folded(raw, 100)
    if raw is None or text is None or (placeholder(raw) if not simple else not _DIGIT.search(raw)):
        return Phone(None)
    found = _parsed_phone(_INTEGRAL_FLOAT.sub(r"\1", text), simple)  # 9845067321.0 from a spreadsheet
    if found is False:  # a placeholder: nothing was known
        return Phone(None)
    if found is None:
        return Phone(raw)
    number, kind = found
    e164 = f"+{number.country_code}{phonenumbers.national_significant_number(number)}"
    if len(e164) > E164_MAX_DIGITS + 1:  # phonenumbers' metadata allows a few longer (German) ones
        return Phone(raw)
    return Phone(raw, e164, _PHONE_TYPES.get(kind))


def phone(value: Any) -> Phone:
    """E.164 (default region IN) when phonenumbers considers the number valid, with its type
    (Mobile, Landline, or None); the raw value always. Of a list, the first valid number."""
    if isinstance(value, list | tuple):
        readings = [_phone(v) for v in value]
        return next((p for p in readings if p.e164), next((p for p in readings if p.raw), Phone(None)))
    return _phone(value)
