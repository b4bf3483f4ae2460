"""How a person's name is shown in Airtable: the display rule (`display_name`, `shown_name`).

Whether two names are one person is another rule, `names`'. This one was written for names as
filings write them and for what the team saw go wrong:

* A name written in one case is put in the case people write it ("ANANYA RAO" → "Ananya Rao",
  "D'SOUZA" → "D'Souza", "MOHAMMED BIN RASHID" → "Mohammed bin Rashid"); a name already in mixed
  case is kept as written. Scripts without case are left as they are.
* Honorifics and professional prefixes are shown as people write them: "Dr.", "Smt.", "Adv."
  with their dot and a space after it ("SMT.LAKSHMI" → "Smt. Lakshmi"), "CA" and "CS" in
  capitals. Single-letter and joined initials stay capitals ("Y V Reddy", "KM Rao"); brackets
  are kept.
* The fuller name wins over initials for the same person, and a name that only differs in
  order, case or spacing from the one shown does not replace it: a person does not flip between
  "Rao Ananya" and "Ananya Rao" at every sync.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from nameparser import HumanName

from service.people.names import (
    HONORIFICS,
    SHORT_HONORIFICS,
    fullness,
    joined_initials,
    name_key,
    names_agree,
)

# Professional designations written before a name, in capitals (Chartered Accountant, Company
# Secretary, Cost and Management Accountant).
DESIGNATIONS = frozenset({"ca", "cs", "cma", "icwa", "cfa"})
# Particles written in lower case inside a name.
PARTICLES = frozenset({"bin", "binti", "bint", "ibn", "van", "von"})

# A dot glued to the word after it ("Smt.Lakshmi", "K.V.RAO"): a space after the dot, unless
# the next word is one letter (an initial of the same group: "K.V.").
_GLUED_DOT = re.compile(r"\.(?=[^\W\d_]{2})")
# The letters of a word, and what separates them (apostrophes, hyphens, dots, brackets).
_LETTERS = re.compile(r"[^\W\d_]+|[\W\d_]+")


def display_name(raw: str | None) -> str | None:
    """A name as Airtable shows it: spacing collapsed, a space after a glued dot, and a name
    written in one case put in the case people write it; a mixed-case name is kept as written."""
    if not raw:
        return None
    text = " ".join(_GLUED_DOT.sub(". ", unicodedata.normalize("NFC", raw)).split())
    cased = [c for c in text if c.isupper() or c.islower()]
    if not cased or (any(c.isupper() for c in cased) and any(c.islower() for c in cased)):
        return text or None
    tokens = text.split(" ")
    return " ".join(_cased(token, first=i == 0, last=i == len(tokens) - 1) for i, token in enumerate(tokens))


def _cased(token: str, *, first: bool, last: bool) -> str:
    """One space-separated token of a one-case name in the case people write it."""
    plain = token.strip(".")
    folded = plain.casefold()
    if folded in DESIGNATIONS and plain == token:
        return token.upper()
    if folded in HONORIFICS or (folded in SHORT_HONORIFICS and token.endswith(".")):
        return token.capitalize()
    if not last and plain == token and joined_initials(plain):
        return token.upper()
    if not first and folded in PARTICLES:
        return token.lower()
    return _word_cased(token)


@functools.lru_cache(maxsize=65536)
def _word_cased(token: str) -> str:
    """A word in the case people write it, by nameparser ("MCDONALD" → "McDonald", "D'SOUZA" →
    "D'Souza"); where the library would change more than the case, each letter run capitalised."""
    if len(token.strip(".")) == 1:
        return token.upper()  # an initial (nameparser reads a lone "y" as a conjunction)
    person = HumanName(token)
    person.capitalize(force=True)
    cased = str(person)
    if cased.casefold() == token.casefold():
        return cased
    return "".join(
        part.upper() if len(part) == 1 else part.capitalize() if part[0].isalpha() else part
        for part in _LETTERS.findall(token)
    )


def shown_name(current: str | None, newer: str | None) -> str | None:
    """The name Airtable shows once `newer` arrives for a person shown as `current`: the newer
    spelling, unless it is the same name written otherwise (case, spacing, dots, order) or a
    shorter form of it ("R. Kumar" after "Ravi Kumar"): then the fuller one stays, in the case
    people write it (a name stored by an earlier version as filed is shown as people write it)."""
    if not newer or not name_key(newer):
        return current
    if not current or not names_agree(current, newer):
        return display_name(newer)
    if fullness(newer) > fullness(current):
        return display_name(newer)
    return display_name(current)
