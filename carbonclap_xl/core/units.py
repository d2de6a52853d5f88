"""The unit registry: one table, created once, no I/O.

A unit is a dimension and a scale to that dimension's base unit. The table accepts the
spellings of Base Empreinte (``passager.km``, ``t.km``, ``kWh PCI``, ``keuro (2023) HT``,
``litre``, ``tonne``, ``repas``, ``unité``), DESNZ (``tonne.km``, ``kWh (Net CV)``, ``Room per
night``) and what people type (``km``, ``L``, ``m³``, ``MWh``, ``€``, ``k€``, ``t``, ``nuit``).

Why not pint: building a pint registry costs ~0.3 s per process, and the Excel button starts
a fresh interpreter per click; the few dozen units of this domain fit in one table that
tests enumerate exhaustively.

Conventions (documented in docs/methodology.md):
- ``km`` typed against a per ``passager.km`` or per ``véhicule.km`` factor is read as
  passenger-km or vehicle-km: the line's quantity is the distance summed over the persons
  (or vehicles) the factor counts. Miles convert the same way.
- ``€`` without HT/TTC is read as excluding VAT (budget lines are HT); ``€ TTC`` converts into
  an HT factor only with the VAT rate of the line's activity family (``model.VAT_RATES``),
  which the caller passes (``conversion(..., vat_pct=...)``).
- Euros carry a year: the one written in the unit (``k€ (2019)``, ``k€ 2019``, ``€2019``), else
  ``REFERENCE_EURO_YEAR`` (2023, the year of the catalogue's ADEME ratios). No price index is
  applied, so euros convert only into a factor in euros of the same year; a factor whose unit
  states no year (old ADEME ``keuro`` rows) takes no euros at all (``MoneyYearMismatch``).
- Energy on a lower heating value (``kWh PCI``) and on a higher one (``kWh PCS``) are distinct
  dimensions, and plain ``kWh`` converts into neither.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from carbonclap_xl.core.errors import MoneyYearMismatch, UnitMismatch, UnknownUnit, close_matches

# The euros of an amount whose unit states no year (``€``, ``k€ HT``): the year of the ADEME
# monetary ratios the catalogue uses (``keuro (2023) HT``). See docs/methodology.md.
REFERENCE_EURO_YEAR = 2023


@dataclass(frozen=True)
class Unit:
    """A parsed unit: ``quantity_in_base = quantity × scale``."""

    symbol: str  # canonical spelling, as shown to users
    dimension: str
    scale: float


# canonical symbol -> (dimension, scale to base, spellings). Spellings are matched after
# normalise(): lower case, ³/² -> 3/2, blanks folded, "kgco2e/" prefix removed.
_TABLE: dict[str, tuple[str, float, tuple[str, ...]]] = {
    # energy, base kWh
    "Wh": ("energy", 1e-3, ("wh",)),
    "kWh": ("energy", 1.0, ("kwh", "kw.h", "kwh elec", "kwh électrique")),
    "MWh": ("energy", 1e3, ("mwh",)),
    "GWh": ("energy", 1e6, ("gwh",)),
    "MJ": ("energy", 1 / 3.6, ("mj",)),
    "GJ": ("energy", 1e3 / 3.6, ("gj",)),
    # energy on the lower heating value, base kWh PCI
    "kWh PCI": ("energy_pci", 1.0, ("kwh pci", "kwh_pci", "kwh (net cv)", "kwh (net)", "kwhpci")),
    "MWh PCI": ("energy_pci", 1e3, ("mwh pci", "mwh_pci")),
    "MJ PCI": ("energy_pci", 1 / 3.6, ("mj pci",)),
    "GJ PCI": ("energy_pci", 1e3 / 3.6, ("gj pci",)),
    "tep PCI": ("energy_pci", 11_630.0, ("tep pci", "tep")),
    # energy on the higher heating value, base kWh PCS
    "kWh PCS": ("energy_pcs", 1.0, ("kwh pcs", "kwh_pcs", "kwh (gross cv)", "kwhpcs")),
    "MWh PCS": ("energy_pcs", 1e3, ("mwh pcs", "mwh_pcs")),
    "GJ PCS": ("energy_pcs", 1e3 / 3.6, ("gj pcs",)),
    # volume, base litre
    "mL": ("volume", 1e-3, ("ml",)),
    "cL": ("volume", 1e-2, ("cl",)),
    "L": ("volume", 1.0, ("l", "litre", "litres", "liter", "liters", "lt")),
    "hL": ("volume", 100.0, ("hl",)),
    "m3": (
        "volume",
        1e3,
        ("m3", "m 3", "cubic metres", "cubic meters", "mètre cube", "metre cube"),
    ),
    "million L": ("volume", 1e6, ("million litres", "millions de litres")),
    # mass, base kg
    "g": ("mass", 1e-3, ("g", "gramme", "grammes")),
    "kg": (
        "mass",
        1.0,
        (
            "kg",
            "kilo",
            "kilos",
            "kilogramme",
            "kilogrammes",
            "kg de poids net",
            "kg net weight",
            "kg (net weight)",
            "kg de biodéchets",
            "kg de déchets",
        ),
    ),
    "t": (
        "mass",
        1e3,
        (
            "t",
            "tonne",
            "tonnes",
            "ton",
            "tons",
            "tonne de déchets",
            "tonnes de déchets",
            "tonne produites",
            "tonnes produites",
        ),
    ),
    # distance, base km
    "m": ("length", 1e-3, ("m", "mètre", "mètres", "metre", "metres")),
    "km": ("length", 1.0, ("km", "kms", "kilomètre", "kilomètres", "kilometre", "kilometres")),
    "mi": ("length", 1.609344, ("mi", "mile", "miles")),
    # distance counted per person, base passenger.km
    "passager.km": (
        "passenger_distance",
        1.0,
        (
            "passager.km",
            "passagers.km",
            "personne.km",
            "personnes.km",
            "voyageur.km",
            "voyageurs.km",
            "passenger.km",
            "km.passenger",
            "passenger km",
            "pkm",
            "p.km",
            "peq.km",
            "personne.km",
            "km.personne",
            "voyageur.km",
            "km.passager",
        ),
    ),
    # distance counted per vehicle, base vehicle.km
    "véhicule.km": (
        "vehicle_distance",
        1.0,
        (
            "véhicule.km",
            "vehicule.km",
            "vehicle.km",
            "km.vehicle",
            "km.véhicule",
            "vkm",
            "voiture.km",
        ),
    ),
    # freight, base t.km
    "kg.km": ("mass_distance", 1e-3, ("kg.km",)),
    "t.km": ("mass_distance", 1.0, ("t.km", "tonne.km", "tonnes.km", "tkm", "t km")),
    "m3.km": ("volume_distance", 1.0, ("m3.km",)),
    # money, base k€ excluding VAT
    "€": (
        "money_eur",
        1e-3,
        (
            "€",
            "eur",
            "euro",
            "euros",
            "€ ht",
            "eur ht",
            "euro ht",
            "euros ht",
            "euro_ht",
            "€ht",
            "euro dépensé",
            "euros dépensés",
        ),
    ),
    "k€": (
        "money_eur",
        1.0,
        (
            "k€",
            "keur",
            "keuro",
            "keuros",
            "k€ ht",
            "keuro ht",
            "k€ (ht)",
            "keuro (ht)",
            "k€ht",
            "milliers d'euros",
        ),
    ),
    "M€": ("money_eur", 1e3, ("m€", "meur", "m€ ht")),
    "€ TTC": ("money_eur_ttc", 1e-3, ("€ ttc", "eur ttc", "euro ttc", "euros ttc")),
    "k€ TTC": ("money_eur_ttc", 1.0, ("k€ ttc", "keuro ttc")),
    "USD": ("money_usd", 1.0, ("usd", "$", "us$", "usd_2022", "usd 2022", "dollar", "dollars")),
    "kUSD": ("money_usd", 1e3, ("kusd", "k$")),
    "£": ("money_gbp", 1.0, ("£", "gbp")),
    # counts
    "unité": (
        "count",
        1.0,
        (
            "unité",
            "unite",
            "unités",
            "unites",
            "unit",
            "units",
            "u",
            "pièce",
            "pièces",
            "piece",
            "pieces",
            "pcs",
            "pce",
            "appareil",
            "appareils",
            "équipement",
            "equipement",
            "article",
            "articles",
            "item",
            "items",
        ),
    ),
    "repas": ("meal", 1.0, ("repas", "meal", "meals", "couvert", "couverts", "plateau repas")),
    "nuit": (
        "night",
        1.0,
        (
            "nuit",
            "nuits",
            "nuitée",
            "nuitées",
            "nuitee",
            "nuitees",
            "night",
            "nights",
            "room per night",
            "chambre.nuit",
            "nuit.chambre",
        ),
    ),
    "h": ("time", 1.0, ("h", "heure", "heures", "hour", "hours", "hr", "per fte working hour")),
    "min": ("time", 1 / 60, ("min", "minute", "minutes")),
    "jour": ("day", 1.0, ("jour", "jours", "j", "day", "days")),
    # surface occupied for a time (LED wall, studio stage), base m² × day
    "m2.jour": ("area_time", 1.0, ("m2.jour", "m2.jours", "m2.j", "jour.m2", "jours.m2",
                                   "m2 x jour", "m2 x jours", "m2.day", "m2.days")),
    "personne": ("person", 1.0, ("personne", "personnes", "person", "persons", "pers")),
    # data, base GB
    "Mo": ("data", 1e-3, ("mo", "mb")),
    "Go": ("data", 1.0, ("go", "gb")),
    "To": ("data", 1e3, ("to", "tb")),
    "Go.an": ("data_time", 1.0, ("go.an", "gb.an", "gb.year", "go/an", "gb/an", "gb.yr")),
    "To.an": ("data_time", 1e3, ("to.an", "tb.an", "tb.year", "to/an", "tb/an")),
    # area, base m2
    "m2": ("area", 1.0, ("m2", "m 2", "mètre carré", "metre carre", "m2 shon")),
}

# Distances typed per person or per vehicle: km converts into these dimensions (see module doc).
_DISTANCE_INTO = {"passenger_distance", "vehicle_distance"}

_PREFIX = re.compile(r"^kg\s*co2e?\s*(?:/|par|per)\s*", re.IGNORECASE)
# The year of euros: "keuro (2023) HT", "k€ (2022)", "k€ 2019", "€2019", "euros de 2019".
_MONEY_YEAR = re.compile(r"(?:\bde\s+)?\(?(?<!\d)((?:19|20)\d\d)(?!\d)\)?")
_MONEY_DIMENSIONS = frozenset({"money_eur", "money_eur_ttc", "money_usd", "money_gbp"})
_EURO_DIMENSIONS = frozenset({"money_eur", "money_eur_ttc"})


def normalise(text: str) -> str:
    """The spelling used for lookups: lower case, compatibility forms folded, blanks folded."""
    s = unicodedata.normalize("NFKC", str(text)).strip()
    s = _PREFIX.sub("", s).lower()
    s = s.replace("²", "2").replace("³", "3").replace("·", ".").replace("×", ".")
    s = re.sub(r"\s*\.\s*", ".", s)
    s = re.sub(r"\s+", " ", s).strip()
    return s


@lru_cache(maxsize=1)
def _aliases() -> dict[str, Unit]:
    table: dict[str, Unit] = {}
    for symbol, (dimension, scale, spellings) in _TABLE.items():
        unit = Unit(symbol, dimension, scale)
        for spelling in (symbol, *spellings):
            key = normalise(spelling)
            if key in table and table[key] != unit:
                raise AssertionError(f"unit spelling {spelling!r} is ambiguous")
            table[key] = unit
    return table


def known_spellings() -> list[str]:
    """Every spelling the registry accepts (normalised), for docs and suggestions."""
    return sorted(_aliases())


def _split_year(text: str) -> tuple[str, int | None]:
    """(spelling without its year, year) of a money spelling: ``"k€ (2019)"`` ->
    ``("k€", 2019)``; the year is only taken out when what remains is a money unit."""
    key = normalise(text)
    found = list(_MONEY_YEAR.finditer(key))
    if len(found) != 1:
        return key, None
    rest = re.sub(r"\s+", " ", _MONEY_YEAR.sub(" ", key)).strip()
    unit = _aliases().get(rest)
    if unit is None or unit.dimension not in _MONEY_DIMENSIONS:
        return key, None
    return rest, int(found[0].group(1))


@lru_cache(maxsize=4096)
def find(text: str) -> Unit | None:
    """The unit spelled ``text``, or None (a year in a money spelling is allowed: ``k€ 2019``)."""
    aliases = _aliases()
    key = normalise(text)
    unit = aliases.get(key)
    if unit is None:
        rest, year = _split_year(text)
        unit = aliases.get(rest) if year is not None else None
    return unit


def money_year(text: str) -> int | None:
    """The year written in a money unit (``"keuro (2023) HT"`` -> 2023), else None."""
    key = normalise(text)
    if key in _aliases():
        return None
    return _split_year(text)[1]


def is_money(text: str) -> bool:
    unit = find(text)
    return unit is not None and unit.dimension in _MONEY_DIMENSIONS


def is_euro_ht(text: str) -> bool:
    """True for an amount in euros excluding VAT (``€``, ``k€ HT``, ``keuro (2023) HT``)."""
    unit = find(text)
    return unit is not None and unit.dimension == "money_eur"


def is_ttc(text: str) -> bool:
    """True for an amount in euros including VAT (``€ TTC``, ``k€ TTC 2024``)."""
    unit = find(text)
    return unit is not None and unit.dimension == "money_eur_ttc"


# What the optional count N of a line (E = Q × N × F) multiplies, by the dimension of the
# factor's unit: the factor's kind decides it, and labels say it (« km × passagers »).
COUNT_NOUNS: dict[str, str] = {
    "passenger_distance": "passagers",
    "vehicle_distance": "véhicules",
    "length": "véhicules",  # a factor per km (not per passager.km) is per vehicle.km
    "mass_distance": "trajets",
    "volume_distance": "trajets",
    "night": "personnes",  # a nuitée: one person (one room) for one night
    "meal": "personnes",
    "day": "unités",
    "time": "personnes",
    "person": "fois",
}
COUNT_NOUN_DEFAULT = "fois"  # energy, mass, money…: the count repeats the quantity


def count_noun(factor_unit_text: str) -> str:
    """What the count of a line means for a factor in ``factor_unit_text``: ``passagers`` for
    a factor per passager.km, ``véhicules`` per véhicule.km (or km), ``fois`` otherwise."""
    return COUNT_NOUNS.get(factor_unit(factor_unit_text).dimension, COUNT_NOUN_DEFAULT)


def entry_label(unit_text: str, factor_unit_text: str) -> str:
    """How a line of this activity is typed: ``km × passagers``, ``km × véhicules``,
    ``nuit × chambres``, ``kWh × fois``."""
    return f"{unit_text} × {count_noun(factor_unit_text)}"


def is_passenger_distance(factor_unit_text: str) -> bool:
    return factor_unit(factor_unit_text).dimension == "passenger_distance"


def is_plain_distance(unit_text: str) -> bool:
    """True for a distance typed per trip (km, mi, m), not per passenger or vehicle."""
    unit = find(unit_text)
    return unit is not None and unit.dimension == "length"


def _suggest(text: str) -> list[str]:
    """Canonical symbols of the spellings closest to ``text``."""
    aliases = _aliases()
    symbols = [aliases[s].symbol for s in close_matches(normalise(text), aliases, n=6)]
    return list(dict.fromkeys(symbols))[:3]


def parse(text: str) -> Unit:
    """The unit spelled ``text``; raises UnknownUnit with the closest spellings."""
    unit = find(text)
    if unit is None:
        raise UnknownUnit(str(text), _suggest(text))
    return unit


def factor_unit(text: str) -> Unit:
    """A factor's unit, never failing: an unknown denominator becomes a dimension of its own.

    Base Empreinte has units such as ``kgCO2e/100 feuilles A4``; a user who types the same
    spelling can still use that factor, and nothing else converts into it.
    """
    unit = find(text)
    if unit is not None:
        return unit
    key = normalise(text)
    return Unit(key, f"other:{key}", 1.0)


@lru_cache(maxsize=4096)
def conversion(unit_text: str, factor_unit_text: str, vat_pct: float | None = None) -> float:
    """The number that turns a quantity in ``unit_text`` into ``factor_unit_text``.

    ``vat_pct`` is the VAT rate of the line's activity family: an amount in ``€ TTC`` converts
    into an HT factor only with it (``/ (1 + vat)``). Raises UnknownUnit when ``unit_text`` is
    spelled unlike anything known (and unlike the factor's own unit), MoneyYearMismatch for
    euros of another year than the factor's (no price index is applied), UnitMismatch when
    the two measure different things.
    """
    target = factor_unit(factor_unit_text)
    source = find(unit_text)
    if source is None:
        if normalise(unit_text) == normalise(factor_unit_text):
            return 1.0
        raise UnknownUnit(str(unit_text), _suggest(unit_text))
    shown_target = _PREFIX.sub("", str(factor_unit_text)).strip()
    if source.dimension in _EURO_DIMENSIONS and target.dimension == "money_eur":
        typed_year = money_year(unit_text) or REFERENCE_EURO_YEAR
        factor_year = money_year(factor_unit_text)
        if factor_year != typed_year:
            raise MoneyYearMismatch(str(unit_text), shown_target, typed_year, factor_year,
                                    stated=money_year(unit_text) is not None)
        scale = source.scale / target.scale
        if source.dimension == "money_eur":
            return scale
        if vat_pct is None:
            raise UnitMismatch(str(unit_text), shown_target)
        return scale / (1.0 + vat_pct / 100.0)
    if source.dimension in _MONEY_DIMENSIONS and source.dimension == target.dimension:
        typed_year, factor_year = money_year(unit_text), money_year(factor_unit_text)
        if typed_year is not None and typed_year != factor_year:
            raise UnitMismatch(str(unit_text), shown_target)  # dollars of another year
    if source.dimension == target.dimension:
        return source.scale / target.scale
    if source.dimension == "length" and target.dimension in _DISTANCE_INTO:
        return source.scale / target.scale
    raise UnitMismatch(str(unit_text), target.symbol)
