"""One error hierarchy for the whole product.

Every error carries its fields and builds its (French) message in ``__str__``; each domain
error also inherits the builtin it refines, so generic callers can still catch ``KeyError``
or ``ValueError``. Errors become CLI lines, Contrôles rows or Excel error values only at the
edges (CLI, workbook writer, xlwings adapter).
"""

from __future__ import annotations

from collections.abc import Iterable


def close_matches(word: str, candidates: Iterable[str], n: int = 3,
                  cutoff: float = 0.6) -> list[str]:
    """Likely intended spellings of ``word`` among ``candidates`` (case-insensitive)."""
    by_lower: dict[str, str] = {}
    for candidate in candidates:
        by_lower.setdefault(candidate.lower(), candidate)
    import difflib

    hits = difflib.get_close_matches(word.lower(), list(by_lower), n=n, cutoff=cutoff)
    return [by_lower[h] for h in hits]


def did_you_mean(suggestions: Iterable[str]) -> str:
    """``vouliez-vous dire « a » ou « b » ?``, or '' when there is nothing to suggest."""
    items = list(suggestions)
    if not items:
        return ""
    return "vouliez-vous dire " + " ou ".join(f"« {s} »" for s in items) + " ?"


class CarbonClapError(Exception):
    """Base class of every error this product raises on purpose."""

    def __str__(self) -> str:  # pragma: no cover - subclasses override
        return self.__class__.__name__


class FactorNotFound(CarbonClapError, KeyError):
    """An activity or factor reference that no loaded edition knows."""

    def __init__(self, reference: str, suggestions: list[str] | None = None) -> None:
        super().__init__(reference)
        self.reference = reference
        self.suggestions = suggestions or []

    def __str__(self) -> str:
        hint = did_you_mean(self.suggestions)
        found = f"Facteur ou activité inconnu : « {self.reference} »"
        return found + (f" ; {hint}" if hint else "")


class UnitMismatch(CarbonClapError, ValueError):
    """A quantity's unit that cannot be converted into the factor's unit."""

    def __init__(self, unit: str, factor_unit: str) -> None:
        super().__init__(unit, factor_unit)
        self.unit = unit
        self.factor_unit = factor_unit

    def __str__(self) -> str:
        return (
            f"Unité « {self.unit} » incompatible avec l'unité du facteur « {self.factor_unit} » : "
            f"saisissez la quantité en {self.factor_unit} ou dans une unité convertible."
        )


class MoneyYearMismatch(UnitMismatch):
    """An amount in euros of one year against a factor in euros of another (or of no stated
    year): no price index is applied, so the conversion is refused, never guessed."""

    def __init__(self, unit: str, factor_unit: str, year: int | None, factor_year: int | None,
                 stated: bool = True) -> None:
        super().__init__(unit, factor_unit)
        self.year = year
        self.factor_year = factor_year
        self.stated = stated  # False: the year is the convention for euros without a year

    def __str__(self) -> str:
        typed = f"euros de {self.year}" + ("" if self.stated else " (« € » sans année)")
        if self.factor_year is None:
            return (f"Montant en {typed} pour un facteur par « {self.factor_unit} », en euros "
                    "d'une année que sa source ne précise pas : aucun indice de prix n'est "
                    "appliqué ; choisissez un ratio en euros datés (keuro (2023) HT).")
        return (f"Montant en {typed} pour un facteur en euros de {self.factor_year} : aucun "
                f"indice de prix n'est appliqué ; saisissez le montant en euros de "
                f"{self.factor_year} (unité « € ({self.factor_year}) »).")


class UnknownUnit(CarbonClapError, ValueError):
    """A unit spelling the registry does not know."""

    def __init__(self, unit: str, suggestions: list[str] | None = None) -> None:
        super().__init__(unit)
        self.unit = unit
        self.suggestions = suggestions or []

    def __str__(self) -> str:
        hint = did_you_mean(self.suggestions)
        return f"Unité inconnue : « {self.unit} »" + (f" ; {hint}" if hint else "")


class InputFileError(CarbonClapError, OSError):
    """An input file that cannot be read (missing, wrong format, wrong columns)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason)
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path} : {self.reason}"


class FactorDataError(CarbonClapError, ValueError):
    """Shipped or source factor data that breaks its schema (a build or packaging bug)."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(where, reason)
        self.where = where
        self.reason = reason

    def __str__(self) -> str:
        return f"Données de facteurs invalides ({self.where}) : {self.reason}"


class HostileFile(CarbonClapError, ValueError):
    """A submitted file rejected before (or while) parsing: unsafe, broken or not a workbook.

    ``code`` is a stable identifier (see docs/validation-codes.md); ``reason`` is one French
    sentence that tells the submitter what is wrong and what to send instead.
    """

    def __init__(self, path: str, code: str, reason: str) -> None:
        super().__init__(path, code, reason)
        self.path = path
        self.code = code
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path} : {self.reason} [{self.code}]"


class WorkbookPatchError(CarbonClapError, ValueError):
    """A workbook package that cannot be patched safely (the output is not written)."""

    def __init__(self, part: str, reason: str) -> None:
        super().__init__(part, reason)
        self.part = part
        self.reason = reason

    def __str__(self) -> str:
        return f"Impossible d'écrire dans {self.part} : {self.reason}"


class ExchangeError(CarbonClapError, ValueError):
    """A request of a front end (the LibreOffice extension, over the JSON exchange) that
    cannot be answered; ``reason`` is what the user is shown, in French."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class LibreOfficeError(CarbonClapError, RuntimeError):
    """LibreOffice missing or refusing an operation (installing the extension, say);
    ``reason`` says what to do, in French."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason
