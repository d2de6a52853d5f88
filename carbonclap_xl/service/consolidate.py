"""A funder's dataset: one row per submission × poste × phase.

    carbonclap-xl consolidate REPORTS.json|WORKBOOKS.xlsx... -o dataset.csv|dataset.parquet

Inputs are reports (``validate --json`` files, a single report, or the ``report.json`` files
the service keeps) or workbooks (validated here, in the sandbox, like ``validate``). Rejected
submissions have no figures and give no row; they are counted. The CSV is written in one of
the formats of ``core.csvout`` (``excel-fr`` by default, ``plain``), which neutralise every
text cell (OWASP): a title such as ``=HYPERLINK(…)`` cannot become a live formula when the
file is opened in a spreadsheet. No web framework is imported here.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from carbonclap_xl.core.csvout import DEFAULT_CSV_FORMAT, CsvFormat, csv_bytes
from carbonclap_xl.core.errors import InputFileError
from carbonclap_xl.core.model import POSTE_BY_ID, POSTE_IDS

COLUMNS: tuple[str, ...] = (
    "submission", "title", "work_type", "producer", "declared_phase", "status", "errors",
    "warnings", "factor_edition", "budget_keur", "shooting_days", "episodes", "duration_min",
    "poste", "poste_label", "phase", "kgco2e", "uncertainty_kgco2e", "share_of_phase_total",
    "poste_kgco2e_per_keur", "poste_kgco2e_per_shooting_day", "phase_total_kgco2e",
    "tco2e_per_hour", "kgco2e_per_keur", "tco2e_per_shooting_day", "tco2e_per_episode",
)  # fmt: skip
PHASES = ("forecast", "final")
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")
def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _ratio(numerator: float | None, denominator: Any) -> float | None:
    d = _number(denominator)
    if numerator is None or d is None or d == 0:
        return None
    value = numerator / d
    return value if math.isfinite(value) else None


def rows_from_report(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The dataset rows of one report (none for a rejected submission)."""
    if doc.get("status") == "rejected" or not isinstance(doc.get("by_poste"), dict):
        return []
    production = (doc.get("workbook") or {}).get("production") or {}
    counts = doc.get("counts") or {}
    totals = doc.get("total_kgco2e") or {}
    indicators = doc.get("indicators") or {}
    by_poste: dict[str, Any] = doc["by_poste"]
    postes = [p for p in POSTE_IDS if p in by_poste] + [p for p in by_poste if p not in POSTE_IDS]
    common = {
        "submission": doc.get("file"), "title": production.get("title"),
        "work_type": production.get("work_type"), "producer": production.get("producer"),
        "declared_phase": production.get("phase"), "status": doc.get("status"),
        "errors": counts.get("errors"), "warnings": counts.get("warnings"),
        "factor_edition": (doc.get("factor_edition") or {}).get("name"),
        "budget_keur": _number(production.get("budget_keur")),
        "shooting_days": _number(production.get("shooting_days")),
        "episodes": _number(production.get("episodes")),
        "duration_min": _number(production.get("duration_min")),
    }
    rows = []
    for phase in PHASES:
        phase_total = _number(totals.get(phase))
        for poste in postes:
            figures = by_poste.get(poste) or {}
            kg = _number(figures.get(phase))
            label = POSTE_BY_ID[poste].label_fr if poste in POSTE_BY_ID else poste
            rows.append({
                **common, "poste": poste, "poste_label": label, "phase": phase, "kgco2e": kg,
                "uncertainty_kgco2e": _number((figures.get("uncertainty") or {}).get(phase)),
                "share_of_phase_total": _ratio(kg, phase_total),
                "poste_kgco2e_per_keur": _ratio(kg, common["budget_keur"]),
                "poste_kgco2e_per_shooting_day": _ratio(kg, common["shooting_days"]),
                "phase_total_kgco2e": phase_total,
                **{name: _number((indicators.get(name) or {}).get(phase))
                   for name in ("tco2e_per_hour", "kgco2e_per_keur", "tco2e_per_shooting_day",
                                "tco2e_per_episode")},
            })
    return rows


def load_reports(path: Path) -> list[dict[str, Any]]:
    """The reports in a JSON file: ``{"files": [...]}`` (``validate --json``), one report,
    or a list of reports."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputFileError(str(path), "fichier introuvable") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(str(path), f"JSON illisible ({exc})") from None
    if isinstance(doc, dict) and isinstance(doc.get("files"), list):
        docs = doc["files"]
    elif isinstance(doc, dict) and "status" in doc:
        docs = [doc]
    elif isinstance(doc, list):
        docs = doc
    else:
        raise InputFileError(str(path), "ce n'est pas un rapport de « validate --json » ni un "
                                        "rapport du service")
    return [d for d in docs if isinstance(d, dict)]


def collect(inputs: Iterable[str], jobs: int = 2, phase: str | None = None
            ) -> Iterator[dict[str, Any]]:
    """Every report of ``inputs``: JSON reports read as they are, workbooks validated in the
    sandbox (as ``validate`` does), in the order given."""
    items = list(inputs)
    for text in items:
        suffix = Path(text).suffix.lower()
        if suffix not in (".json", *WORKBOOK_SUFFIXES):
            raise InputFileError(text, "donnez des rapports .json ou des classeurs .xlsx/.xlsm")
    workbooks = [t for t in items if Path(t).suffix.lower() in WORKBOOK_SUFFIXES]
    validated: Iterator[dict[str, Any]] = iter(())
    if workbooks:
        from carbonclap_xl.validation.batch import BatchOptions, validate_paths

        validated = validate_paths(workbooks, BatchOptions(phase=phase, jobs=jobs))
    for text in items:
        if Path(text).suffix.lower() == ".json":
            yield from load_reports(Path(text))
        else:
            yield next(validated)


def csv_data(rows: Iterable[dict[str, Any]], fmt: CsvFormat = DEFAULT_CSV_FORMAT) -> bytes:
    """The dataset as a CSV file in ``fmt`` (encoded, with its byte order mark in
    ``excel-fr``)."""
    return csv_bytes(COLUMNS, rows, fmt)


def write_dataset(rows: list[dict[str, Any]], out: Path,
                  fmt: CsvFormat = DEFAULT_CSV_FORMAT) -> None:
    """Write ``rows`` as CSV (in ``fmt``) or Parquet (by ``out``'s suffix), atomically: a
    temporary file beside ``out``, renamed when complete."""
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise InputFileError(str(out), "la sortie doit être un fichier .csv ou .parquet")
    if suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise InputFileError(str(out), "le format Parquet demande pyarrow (pip install "
                                           "pyarrow) ; sinon, choisissez une sortie .csv"
                                 ) from None
    from carbonclap_xl.core.atomic import require_folder

    require_folder(out)  # a missing folder is refused, never created
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name[:60]}.", suffix=".tmp", dir=out.parent)
    try:
        if suffix == ".csv":
            with os.fdopen(fd, "wb") as fh:
                fh.write(csv_data(rows, fmt))
                fh.flush()
                os.fsync(fh.fileno())
        else:
            os.close(fd)
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pylist([{c: row.get(c) for c in COLUMNS} for row in rows])
            pq.write_table(table, tmp)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
