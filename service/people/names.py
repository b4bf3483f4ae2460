"""How two people's names are compared: the merge rule (`name_key`, `names_agree`).

How a name is shown is another rule, `names_shown`'s. This one was written for names as MCA
filings and Attestr's answers write them, and for the real cases where a looser rule merged two
people or split one:

* Case, spacing, dots, apostrophes and the Unicode normalisation form do not count: "K.V. RAO",
  "K V Rao", "D'SOUZA" / "DSouza", and a name sent in NFD or NFC are one name (NFKC, casefold).
* A word is a run of letters, digits and combining marks. In Devanagari, Tamil and the other
  Indic scripts a vowel sign or a virama belongs to its word: "सुरेश" is one word, not three
  consonants that would pass for the initials of almost any name.
* Two letters joined before the last word ("KM RAO", "MS DHONI", "DR REDDY") are initials:
  MCA's forms keep prefixes out of a director's name, so in a filing such letters are the
  person's. A leading honorific counts for nothing only when it is written as one: a word that
  is never initials ("Shri", "Smt", "Mrs", "Prof"…), or a two-letter title with its dot ("Dr.",
  "Ms.", "Mr."). As the last word two letters are a name ("AMIT DE").
* A name agrees with a shorter form of itself, in any order: each word of the shorter matches
  its own word of the longer, the same word or its initial ("R. Kumar" / "Ravi Kumar",
  "RAO ANANYA" / "Ananya Rao").
"""

from __future__ import annotations

import functools
import re
import unicodedata

# Titles that are never a person's initials: a leading one does not count.
HONORIFICS = frozenset(
    {
        "mrs", "miss", "prof", "shri", "sri", "shree", "smt", "shrimati", "srimati", "kumari",
        "kum", "thiru", "tmt", "thirumathi", "selvi", "late", "adv", "capt", "col", "maj",
    }
)  # fmt: skip
# Two-letter titles that are also initials: a title only with its dot ("Dr.", "Ms.").
SHORT_HONORIFICS = frozenset({"mr", "ms", "mx", "dr", "sh", "km", "er", "lt"})
# Two-letter given names ("OM PRAKASH"): not initials.
TWO_LETTER_NAMES = frozenset({"om"})

_APOSTROPHES = re.compile(r"['’‘`´]")
# ASCII names (most of them) are split by a regex; others character by character.
_ASCII_WORD = re.compile(r"([A-Za-z0-9]+)(\.?)")


def _in_word(char: str) -> bool:
    return unicodedata.category(char)[0] in "LMN"  # letters, combining marks, digits


def words(name: str) -> list[tuple[str, bool]]:
    """The words of a name as written (NFKC, apostrophes dropped), each with whether a dot
    follows it: `"Dr. K.V. RAO"` → `[("Dr", True), ("K", True), ("V", True), ("RAO", False)]`."""
    text = _APOSTROPHES.sub("", unicodedata.normalize("NFKC", name))
    if text.isascii():
        return [(m.group(1), bool(m.group(2))) for m in _ASCII_WORD.finditer(text)]
    found: list[tuple[str, bool]] = []
    start = None
    for i, char in enumerate(text):
        if _in_word(char):
            start = i if start is None else start
        elif start is not None:
            found.append((text[start:i], char == "."))
            start = None
    if start is not None:
        found.append((text[start:], False))
    return found


def is_title(word: str, dotted: bool) -> bool:
    """Whether a leading word is an honorific as written (not someone's initials)."""
    folded = word.casefold()
    return folded in HONORIFICS or (dotted and folded in SHORT_HONORIFICS)


def joined_initials(word: str) -> bool:
    """Two Latin letters written together before the last word ("KM", "YV"): two initials."""
    return len(word) == 2 and word.isascii() and word.isalpha() and word.casefold() not in TWO_LETTER_NAMES


@functools.lru_cache(maxsize=65536)
def name_key(name: str | None) -> str | None:
    """How two names are compared: words in NFKC and casefolded, a leading honorific written as
    one left out, joined initials apart ("Mr. Suresh  PILLAI" → "suresh pillai", "KM RAO" →
    "k m rao"); None for a name with no word."""
    if not name:
        return None
    found = words(name)
    while len(found) > 1 and is_title(*found[0]):
        found.pop(0)
    parts: list[str] = []
    for i, (word, _dotted) in enumerate(found):
        if i < len(found) - 1 and joined_initials(word):
            parts.extend(word)
        else:
            parts.append(word)
    return " ".join(p.casefold() for p in parts) or None


def _same_or_initial(a: str, b: str) -> bool:
    return a == b or (len(a) == 1 and b[0] == a) or (len(b) == 1 and a[0] == b)


def names_agree(a: str | None, b: str | None) -> bool:
    """Whether two names can be one person: the same name, or one a shorter form of the other,
    each word of the shorter matching its own word of the longer (the same word, or its initial).
    Symmetric; a missing name agrees."""
    ka, kb = name_key(a), name_key(b)
    if not ka or not kb:
        return True
    if ka == kb:
        return True
    short, long = sorted((ka.split(), kb.split()), key=len)
    taken: dict[int, int] = {}  # word of the longer -> word of the shorter (a bipartite matching)

    def place(i: int, seen: set[int]) -> bool:
        for j, word in enumerate(long):
            if j not in seen and _same_or_initial(short[i], word):
                seen.add(j)
                if j not in taken or place(taken[j], seen):
                    taken[j] = i
                    return True
        return False

    return all(place(i, set()) for i in range(len(short)))


def fullness(name: str | None) -> int:
    """How much of a name is written out: the letters of its words, initials included."""
    key = name_key(name)
    return len(key.replace(" ", "")) if key else 0
