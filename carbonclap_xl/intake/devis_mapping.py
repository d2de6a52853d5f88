"""The reviewed mapping from a production budget's structure to postes and monetary factors.

The data lives in ``devis_mapping.yaml`` beside this module (its header documents the
grammar); it ships inside the package and is read through ``importlib.resources``. A user
file in the same grammar (``import-devis --mapping``) is merged over it: its rules first, its
chapters and sub-chapters replacing the shipped ones of the same key. Every placement is
checked against the factor edition when the mapping is loaded: a catalogue activity must exist,
be priced per k€ and list the poste; a ``BE:<id>`` reference must be an ADEME monetary ratio.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from carbonclap_xl.core.errors import FactorNotFound, InputFileError, close_matches, did_you_mean
from carbonclap_xl.core.factors import FactorEdition, fold, load_edition, parse_reference
from carbonclap_xl.core.model import POSTE_BY_ID, POSTE_IDS
from carbonclap_xl.core.units import factor_unit

MAPPING_FILE = "devis_mapping.yaml"
SCHEMA = 1
LINE, EXCLUDE, UNPLACED = "line", "exclude", "unplaced"
PREFIX_MIN_LETTERS = 6  # shorter words of a phrase must be whole words of the label

_WORD = re.compile(r"[a-z0-9]+")


def words_of(text: str) -> tuple[str, ...]:
    """The folded words of a label: ``"Billets d'avion"`` -> ``("billets", "d", "avion")``."""
    return tuple(_WORD.findall(fold(text)))


def _word_matches(word: str, token: str) -> bool:
    return token == word or (len(word) >= PREFIX_MIN_LETTERS and token.startswith(word))


def phrase_in(phrase: tuple[str, ...], tokens: tuple[str, ...]) -> bool:
    """Every word of ``phrase`` found among ``tokens`` (any order)."""
    return all(any(_word_matches(w, t) for t in tokens) for w in phrase)


def phrase_starts(phrase: tuple[str, ...], tokens: tuple[str, ...]) -> bool:
    """``tokens`` begin with the words of ``phrase``, in order."""
    return len(tokens) >= len(phrase) and all(
        _word_matches(w, t) for w, t in zip(phrase, tokens, strict=False))


@dataclass(frozen=True)
class Family:
    """Monetary activities and the physical activities that record the same spending."""

    what: str
    monetary: tuple[str, ...]
    physical: tuple[str, ...]  # shell-style patterns of catalogue activity ids

    def is_physical(self, activity_id: str) -> bool:
        return any(fnmatch.fnmatchcase(activity_id, p) for p in self.physical)


@dataclass(frozen=True)
class Placement:
    kind: str  # LINE | EXCLUDE | UNPLACED
    why: str
    poste: str | None = None
    activity: str | None = None  # catalogue id or BE:<id>
    default_poste: str | None = None
    same_spending: Family | None = None  # narrower than the activity's family


@dataclass(frozen=True)
class Chapter:
    key: str
    label: str
    film: int | None
    tv: int | None
    match: tuple[tuple[str, ...], ...]
    placement: Placement
    origin: str


@dataclass(frozen=True)
class Subchapter:
    code: str
    label: str
    placement: Placement
    origin: str


@dataclass(frozen=True)
class Rule:
    phrases: tuple[str, ...]  # as written, for the docs
    words: tuple[tuple[str, ...], ...]
    chapters: frozenset[str] | None
    subchapters: frozenset[str] | None
    placement: Placement
    origin: str

    def matches(self, tokens: tuple[str, ...], chapter: str | None, sub: str | None) -> bool:
        if self.chapters is not None and chapter not in self.chapters:
            return False
        if self.subchapters is not None and sub not in self.subchapters:
            return False
        return any(phrase_in(p, tokens) for p in self.words)


@dataclass(frozen=True)
class DevisMapping:
    chapters: dict[str, Chapter]
    subchapters: dict[str, Subchapter]
    rules: tuple[Rule, ...]
    families: tuple[Family, ...]
    sources: tuple[str, ...]  # the files it was read from, shipped first

    def chapter_by_number(self, layout: str, number: int) -> Chapter | None:
        for chapter in self.chapters.values():
            if (chapter.film if layout == "film" else chapter.tv) == number:
                return chapter
        return None

    def chapter_by_heading(self, tokens: tuple[str, ...],
                           layout: str | None = None) -> Chapter | None:
        """The chapter whose ``match`` phrase begins these label words (longest phrase
        wins), among the chapters that ``layout`` ("film", "tv") numbers."""
        best: tuple[int, Chapter] | None = None
        for chapter in self.chapters.values():
            number = chapter.film if layout == "film" else chapter.tv if layout == "tv" else 0
            if number is None:
                continue
            for phrase in chapter.match:
                if phrase_starts(phrase, tokens) and (best is None or len(phrase) > best[0]):
                    best = (len(phrase), chapter)
        return best[1] if best else None

    def rule_for(self, tokens: tuple[str, ...], chapter: str | None,
                 sub: str | None) -> Rule | None:
        return next((r for r in self.rules if r.matches(tokens, chapter, sub)), None)

    def family_of(self, activity: str) -> Family | None:
        return next((f for f in self.families if activity in f.monetary), None)


# --------------------------------------------------------------------------- loading


class _Checker:
    """Collects the problems of one mapping file; raises them as one InputFileError."""

    def __init__(self, where: str, edition: FactorEdition) -> None:
        self.where = where
        self.edition = edition
        self.problems: list[str] = []

    def fail(self, text: str) -> None:
        self.problems.append(text)

    def text(self, value: Any, what: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(f"{what} : texte attendu")
            return ""
        return value.strip()

    def phrases(self, value: Any, what: str) -> tuple[tuple[str, ...], ...]:
        if not isinstance(value, list) or not value:
            self.fail(f"{what} : liste de mots attendue, par exemple [\"hotel\", \"nuitee\"]")
            return ()
        out = []
        for item in value:
            tokens = words_of(str(item)) if isinstance(item, str | int) else ()
            if not tokens:
                self.fail(f"{what} : « {item} » ne contient aucun mot")
                continue
            out.append(tokens)
        return tuple(out)

    def placement(self, node: Mapping[str, Any], what: str, rule: bool) -> Placement:
        kinds = [k for k in ("activity", "exclude", "unplaced") if k in node]
        if len(kinds) != 1:
            self.fail(f"{what} : une seule décision parmi activity, exclude, unplaced")
            return Placement(UNPLACED, "")
        if kinds[0] == "exclude":
            return Placement(EXCLUDE, self.text(node["exclude"], f"{what}.exclude"))
        if kinds[0] == "unplaced":
            return Placement(UNPLACED, self.text(node["unplaced"], f"{what}.unplaced"))
        activity = self.text(node.get("activity"), f"{what}.activity")
        why = self.text(node.get("why"), f"{what}.why")
        poste, default = node.get("poste"), node.get("default_poste")
        if not rule and (poste is None or default is not None):
            self.fail(f"{what} : « poste » attendu (default_poste est réservé aux règles)")
        if poste is not None and default is not None:
            self.fail(f"{what} : poste ou default_poste, pas les deux")
        if rule and poste is None and default is None and activity not in self.edition.activities:
            self.fail(f"{what} : « poste » ou « default_poste » attendu pour {activity}")
        for p in (poste, default):
            if p is not None and p not in POSTE_IDS:
                self.fail(f"{what} : poste « {p} » inconnu (postes : {', '.join(POSTE_IDS)})")
        self._check_activity(activity, poste, default, what)
        same = node.get("same_spending")
        family = None
        if same is not None:
            if not isinstance(same, dict):
                self.fail(f"{what}.same_spending : bloc what + physical attendu")
            else:
                family = self.family(same, f"{what}.same_spending", (activity,))
        return Placement(LINE, why, poste, activity, default, family)

    def family(self, node: Mapping[str, Any], what: str,
               monetary: tuple[str, ...]) -> Family:
        physical = tuple(str(p) for p in node.get("physical") or ())
        if not physical:
            self.fail(f"{what} : liste physical attendue")
        for p in physical:
            if not any(fnmatch.fnmatchcase(a, p) for a in self.edition.activities):
                self.fail(f"{what} : « {p} » ne désigne aucune activité du catalogue")
        return Family(self.text(node.get("what"), f"{what}.what"), monetary, physical)

    def _check_activity(self, activity: str, poste: str | None, default: str | None,
                        what: str) -> None:
        if not activity:
            return
        act = self.edition.activities.get(activity)
        if act is not None:
            factor = act.factor
            for p in (poste, default):
                if p is not None and p in POSTE_IDS and p not in act.postes:
                    self.fail(f"{what} : l'activité {activity} ne va pas dans le poste {p} "
                              f"(postes permis : {', '.join(act.postes)})")
        elif parse_reference(activity) is not None:
            try:
                factor = self.edition.factor(activity)
            except FactorNotFound as exc:
                self.fail(f"{what} : {exc}")
                return
            if factor.status != "valid":
                self.fail(f"{what} : le facteur {activity} est archivé")
        else:
            hint = did_you_mean(close_matches(activity, self.edition.activities))
            self.fail(f"{what} : activité « {activity} » inconnue du catalogue"
                      + (f" ; {hint}" if hint else ""))
            return
        if not factor_unit(factor.unit).dimension.startswith("money_eur"):
            self.fail(f"{what} : {activity} n'est pas un ratio monétaire en euros "
                      f"(unité du facteur : {factor.unit})")

    def raise_if_any(self) -> None:
        if self.problems:
            shown = self.problems[:8]
            more = len(self.problems) - len(shown)
            raise InputFileError(self.where, "table de correspondance invalide : "
                                 + " ; ".join(shown)
                                 + (f" ; et {more} autre(s)" if more > 0 else ""))


def _number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _parse(doc: Any, where: str, origin: str, edition: FactorEdition
           ) -> tuple[dict[str, Chapter], dict[str, Subchapter], list[Rule], list[Family]]:
    check = _Checker(where, edition)
    if not isinstance(doc, dict):
        raise InputFileError(where, "table de correspondance invalide : le fichier doit être un "
                                    "document YAML (clés schema, chapters, subchapters, rules)")
    if doc.get("schema") != SCHEMA:
        check.fail(f"« schema: {SCHEMA} » attendu en tête du fichier")
    unknown = set(doc) - {"schema", "chapters", "subchapters", "rules", "double_counting"}
    if unknown:
        check.fail("clé(s) inconnue(s) : " + ", ".join(sorted(map(str, unknown))))
    chapters: dict[str, Chapter] = {}
    for key, node in (doc.get("chapters") or {}).items():
        what = f"chapters.{key}"
        if not isinstance(node, dict):
            check.fail(f"{what} : bloc attendu")
            continue
        film, tv = node.get("film"), node.get("tv")
        if (film is not None and _number(film) is None) or (tv is not None and _number(tv) is None):
            check.fail(f"{what} : film et tv sont des numéros (ou null)")
        chapters[str(key)] = Chapter(
            str(key), check.text(node.get("label"), f"{what}.label"), _number(film),
            _number(tv), check.phrases(node.get("match"), f"{what}.match"),
            check.placement(node, what, rule=False), origin)
    subchapters: dict[str, Subchapter] = {}
    for code, node in (doc.get("subchapters") or {}).items():
        what = f"subchapters.{code}"
        code = str(code)
        if not re.fullmatch(r"[1-9]\d", code):
            check.fail(f"{what} : un sous-chapitre a deux chiffres (« 51 »)")
        if not isinstance(node, dict):
            check.fail(f"{what} : bloc attendu")
            continue
        subchapters[code] = Subchapter(code, check.text(node.get("label"), f"{what}.label"),
                                       check.placement(node, what, rule=False), origin)
    rules: list[Rule] = []
    for i, node in enumerate(doc.get("rules") or [], start=1):
        what = f"rules[{i}]"
        if not isinstance(node, dict):
            check.fail(f"{what} : bloc attendu")
            continue
        scope = {}
        for name in ("chapters", "subchapters"):
            value = node.get(name)
            if value is not None and not (isinstance(value, list) and value):
                check.fail(f"{what}.{name} : liste attendue")
                value = None
            scope[name] = None if value is None else frozenset(str(v) for v in value)
        rules.append(Rule(tuple(str(w) for w in node.get("words") or ()),
                          check.phrases(node.get("words"), f"{what}.words"),
                          scope["chapters"], scope["subchapters"],
                          check.placement(node, what, rule=True), origin))
    families: list[Family] = []
    for i, node in enumerate(doc.get("double_counting") or [], start=1):
        what = f"double_counting[{i}]"
        if not isinstance(node, dict):
            check.fail(f"{what} : bloc attendu")
            continue
        monetary = tuple(str(a) for a in node.get("monetary") or ())
        if not monetary:
            check.fail(f"{what} : liste monetary attendue")
        for a in monetary:
            if a not in edition.activities:
                check.fail(f"{what} : activité « {a} » inconnue du catalogue")
        families.append(check.family(node, what, monetary))
    check.raise_if_any()
    return chapters, subchapters, rules, families


def _read_yaml(text: str, where: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (ligne {mark.line + 1})" if mark is not None else ""
        raise InputFileError(where, f"YAML illisible{at} : {getattr(exc, 'problem', exc)}") \
            from None


def shipped_text() -> str:
    return (resources.files("carbonclap_xl.intake") / MAPPING_FILE).read_text(encoding="utf-8")


# edition id -> (edition, parsed shipped mapping): parsed and checked once per edition
_SHIPPED: dict[int, tuple[FactorEdition, tuple[Any, ...]]] = {}


def _shipped(edition: FactorEdition) -> tuple[Any, ...]:
    cached = _SHIPPED.get(id(edition))
    if cached is None or cached[0] is not edition:
        parsed = _parse(_read_yaml(shipped_text(), MAPPING_FILE), MAPPING_FILE, "livrée", edition)
        cached = _SHIPPED[id(edition)] = (edition, parsed)
    return cached[1]


def load_mapping(user_file: Path | None = None,
                 edition: FactorEdition | None = None) -> DevisMapping:
    """The shipped mapping, with ``user_file`` merged over it when given."""
    edition = edition or load_edition()
    shipped_chapters, shipped_subs, shipped_rules, shipped_families = _shipped(edition)
    chapters, subchapters = dict(shipped_chapters), dict(shipped_subs)
    rules, families = list(shipped_rules), list(shipped_families)
    sources = [MAPPING_FILE]
    if user_file is not None:
        where = str(user_file)
        try:
            text = Path(user_file).read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise InputFileError(where, "fichier introuvable") from None
        except UnicodeDecodeError:
            raise InputFileError(where, "le fichier doit être en UTF-8") from None
        u_chapters, u_subs, u_rules, u_families = _parse(_read_yaml(text, where), where,
                                                         "utilisateur", edition)
        chapters.update(u_chapters)
        subchapters.update(u_subs)
        rules = [*u_rules, *rules]
        families = [*u_families, *families]
        sources.append(where)
    return DevisMapping(chapters, subchapters, tuple(rules), tuple(families), tuple(sources))


def resolve_poste(placement: Placement, context_poste: str | None,
                  edition: FactorEdition) -> str | None:
    """The poste of a line placed by ``placement`` in a chapter whose poste is
    ``context_poste``: the placement's own, else the context's when the activity allows it,
    else its ``default_poste``, else the activity's first catalogue poste."""
    if placement.poste:
        return placement.poste
    act = edition.activities.get(placement.activity or "")
    allowed: Iterable[str] = act.postes if act is not None else POSTE_IDS
    if context_poste and context_poste in allowed:
        return context_poste
    if placement.default_poste:
        return placement.default_poste
    return act.postes[0] if act is not None else None


# --------------------------------------------------------------------------- documentation


def _activity_text(activity: str | None, edition: FactorEdition) -> str:
    if not activity:
        return ""
    act = edition.activities.get(activity)
    factor = act.factor if act is not None else edition.factor(activity)
    label = act.label_fr if act is not None else factor.label_fr
    return f"`{activity}` {label} ({factor.value:g} kgCO2e/k€, {factor.id})"


def _decision(p: Placement, edition: FactorEdition) -> str:
    if p.kind == EXCLUDE:
        return "**exclue**"
    if p.kind == UNPLACED:
        return "**non placée**"
    poste = p.poste or (f"poste du chapitre, sinon {p.default_poste}" if p.default_poste
                        else "poste du chapitre")
    text = f"{POSTE_BY_ID[poste].label_fr if poste in POSTE_BY_ID else poste} — " \
           f"{_activity_text(p.activity, edition)}"
    if p.same_spending is not None:
        text += f"; doublon si {p.same_spending.what} : " + ", ".join(
            f"`{x}`" for x in p.same_spending.physical)
    return text


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def mapping_markdown(mapping: DevisMapping | None = None,
                     edition: FactorEdition | None = None) -> str:
    """The mapping as Markdown tables (chapters, sub-chapters, rules, double counting)."""
    edition = edition or load_edition()
    mapping = mapping or load_mapping(edition=edition)
    out = ["### Chapters (both layouts)", "",
           "| key | chapter | film | TV | heading starts with | lines not otherwise placed | why |",
           "|---|---|---|---|---|---|---|"]
    for c in mapping.chapters.values():
        match = ", ".join(" ".join(p) for p in c.match)
        out.append(f"| `{c.key}` | {c.label} | {c.film or ''} | {c.tv or ''} | {match} | "
                   f"{_cell(_decision(c.placement, edition))} | {_cell(c.placement.why)} |")
    out += ["", "### Sub-chapters (feature-film devis détaillé)", "",
            "| code | sub-chapter | decision | why |", "|---|---|---|---|"]
    for s in sorted(mapping.subchapters.values(), key=lambda s: s.code):
        out.append(f"| {s.code} | {s.label} | {_cell(_decision(s.placement, edition))} | "
                   f"{_cell(s.placement.why)} |")
    out += ["", "### Label rules (tried first, in this order)", "",
            "| # | the label contains | only in | decision | why |", "|---|---|---|---|---|"]
    for i, r in enumerate(mapping.rules, start=1):
        scope = ", ".join(sorted((r.chapters or set()) | (r.subchapters or set()))) or "partout"
        words = ", ".join(f"« {w} »" for w in r.phrases)
        out.append(f"| {i} | {_cell(words)} | {scope} | "
                   f"{_cell(_decision(r.placement, edition))} | {_cell(r.placement.why)} |")
    out += ["", "### Double counting: monetary lines and the physical lines of the same "
            "spending", "", "| monetary activity | physical activities | they count |",
            "|---|---|---|"]
    for f in mapping.families:
        out.append(f"| {', '.join(f'`{a}`' for a in f.monetary)} | "
                   f"{', '.join(f'`{p}`' for p in f.physical)} | {f.what} |")
    return "\n".join(out) + "\n"
