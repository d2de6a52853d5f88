"""Find activities of the catalogue as a producer types them: best match first.

Pure and light (no numpy): the one search of the catalogue. ``activities list``, the Excel
ribbon's Facteurs and ``CC_RECHERCHE`` (``core.worksheet``), and the LibreOffice extension's
Facteurs all rank with :func:`rank_activities`. Matching ignores case,
accents and punctuation; the rank of an activity is the best of:

0. exact: the text is its id or its French label;
1. prefix: its label or id starts with the text;
2. all words: every word typed is found in its label, id, note, English label or its factor's
   label (words found at the start of a word of the label rank first);
3. fuzzy: every word typed (of four letters or more) is close to a word of its label or id
   (a typo: « trian »), or the whole text is close to its label.

Within a rank, activities come in label order, the catalogue's default of a family (« (défaut) »
in its label) first and, for « all words », those whose words start with what was typed.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from carbonclap_xl.core.factors import Activity, fold
from carbonclap_xl.core.units import entry_label

EXACT, PREFIX, ALL_WORDS, FUZZY = 0, 1, 2, 3
RANK_NAMES = {EXACT: "exact", PREFIX: "début", ALL_WORDS: "tous les mots", FUZZY: "approché"}
_WORD = re.compile(r"[a-z0-9]+")
_FUZZY_WORD = 0.75  # difflib ratio for one word typed against one word of a label
_FUZZY_MIN_LENGTH = 4  # shorter words are too often "close" to anything (tgv ~ tv)
_FUZZY_TEXT = 0.8  # for the whole text against the whole label


@dataclass(frozen=True)
class Match:
    activity: Activity
    rank: int  # EXACT, PREFIX, ALL_WORDS or FUZZY
    score: float  # within a rank, higher first

    @property
    def entry(self) -> str:
        """How a line of the activity is typed: « km × passagers »."""
        return entry_label(self.activity.unit, self.activity.factor.unit)


def _words(text: str) -> list[str]:
    return _WORD.findall(fold(text).replace("_", " "))


def _norm(text: str) -> str:
    """Lower case, no accents, no punctuation: « Train – TGV (km × personnes) » ->
    ``train tgv km personnes``; ``train_tgv`` -> ``train tgv``."""
    return " ".join(_words(text))


def _match(activity: Activity, query: str, words: list[str]) -> Match | None:
    label, ident = _norm(activity.label_fr), _norm(activity.id)
    if query in (label, ident):
        return Match(activity, EXACT, 1.0)
    if label.startswith(query) or ident.startswith(query):
        return Match(activity, PREFIX, 0.0)  # then in label order
    label_words = _words(activity.label_fr) + _words(activity.id)
    haystack = " ".join([label, ident, _norm(activity.note or ""), _norm(activity.label_en),
                         _norm(activity.factor.label_fr)])
    if words and all(w in haystack for w in words):
        starts = sum(any(lw.startswith(w) for lw in label_words) for w in words)
        return Match(activity, ALL_WORDS, starts / len(words))
    if words and all(len(w) >= _FUZZY_MIN_LENGTH for w in words):
        ratios = [max((difflib.SequenceMatcher(None, w, lw).ratio() for lw in label_words),
                      default=0.0) for w in words]
        if min(ratios) >= _FUZZY_WORD:
            return Match(activity, FUZZY, sum(ratios) / len(ratios))
    whole = difflib.SequenceMatcher(None, query, label).ratio()
    if whole >= _FUZZY_TEXT:
        return Match(activity, FUZZY, whole)
    return None


def rank_activities(activities: Iterable[Activity], text: str | None = None,
                    poste: str | None = None, *, prefer: str | None = None) -> list[Match]:
    """The activities (of ``poste`` when given) that ``text`` matches, best first; all of
    them in label order when ``text`` is empty. ``prefer``: a poste whose activities come
    first (the sheet the user is on), the others after them."""
    pool = [a for a in activities if poste is None or poste in a.postes]
    query = _norm(text or "")

    def elsewhere(a: Activity) -> bool:
        return prefer is not None and prefer not in a.postes

    if not query:
        return [Match(a, EXACT, 0.0)
                for a in sorted(pool, key=lambda a: (elsewhere(a), _norm(a.label_fr)))]
    words = query.split()
    found = [m for m in (_match(a, query, words) for a in pool) if m is not None]
    return sorted(found, key=lambda m: (elsewhere(m.activity), m.rank, -m.score,
                                        not _is_default(m.activity),
                                        _norm(m.activity.label_fr)))


def _is_default(activity: Activity) -> bool:
    """The catalogue marks the activity to choose when in doubt « (défaut) » in its label."""
    return "defaut" in _words(activity.label_fr)
