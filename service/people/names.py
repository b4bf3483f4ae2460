"""People's names: how two are compared, and how one is shown.

MCA filings write names in capitals, with or without honorifics and dots ("MR. SURESH PILLAI",
"K.V. RAO"). Two spellings are one name when they differ only in case, spacing, punctuation or
leading honorifics; a name agrees with a shorter form of itself ("Ravi Kumar" / "RAVI KUMAR
SHARMA", "R. Kumar" / "Ravi Kumar"). Airtable shows a name as people write it: nameparser, a
well-kept library, puts a name written in one case into the case people use ("ANANYA RAO" →
"Ananya Rao", "D'SOUZA" → "D'Souza", "MOHAMMED BIN RASHID" → "Mohammed bin Rashid") and leaves a
name already in mixed case as it is.
"""

from __future__ import annotations

import re

from nameparser import HumanName

# Titles written before Indian names (and the common English ones); leading ones do not count.
HONORIFICS = frozenset(
    {
        "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "shri", "sri", "shree", "sh", "smt",
        "shrimati", "srimati", "kumari", "kum", "km", "thiru", "tmt", "thirumathi", "selvi",
        "late", "er", "adv", "capt", "col", "maj", "lt",
    }
)  # fmt: skip
_WORD = re.compile(r"[^\W_]+")


def name_key(name: str | None) -> str | None:
    """How two names are compared: case, punctuation, spacing and leading honorifics do not
    count ("Mr. Suresh  PILLAI" → "suresh pillai")."""
    if not name:
        return None
    words = _WORD.findall(name.casefold())
    while len(words) > 1 and words[0] in HONORIFICS:
        words.pop(0)
    return " ".join(words) or None


def _same_or_initial(a: str, b: str) -> bool:
    return a == b or (len(a) == 1 and b[0] == a) or (len(b) == 1 and a[0] == b)


def names_agree(a: str | None, b: str | None) -> bool:
    """Whether two names can be one person: the same name, or one a shorter form of the other,
    each word of the shorter matching its own word of the longer (the same word, or its initial).
    Symmetric; a missing name agrees."""
    ka, kb = name_key(a), name_key(b)
    if not ka or not kb:
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


def display_name(raw: str | None) -> str | None:
    """A name as Airtable shows it: leading honorifics dropped, spacing collapsed, and a name
    written in one case put in the case people write it; a mixed-case name is kept as written."""
    if not raw:
        return None
    words = raw.split()
    while len(words) > 1 and name_key(words[0]) in HONORIFICS | {None}:
        words.pop(0)
    text = " ".join(words)
    if not any(c.isalpha() for c in text) or (text != text.upper() and text != text.lower()):
        return text or None
    person = HumanName(text)
    person.capitalize(force=True)
    shown = str(person).strip()
    # The library rebuilds the name from its parts: take its casing only when no word was lost.
    return shown if name_key(shown) == name_key(text) else text.title()
