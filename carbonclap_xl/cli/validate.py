"""``carbonclap-xl validate``: validate submitted workbooks in a sandbox, print and export
the verdicts.

The reports are streamed: each one is printed and written to ``--json`` / ``--csv`` as it
comes back from its worker, and only a few summary fields stay in this process, so its
memory does not grow with the batch. The files are written atomically (``core.atomic``):
complete at the end of the run, absent if it fails.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from carbonclap_xl.cli.common import (
    EXIT_ISSUES,
    EXIT_OK,
    EXIT_UNREADABLE,
    add_csv_format,
    examples,
    positive_number,
)
from carbonclap_xl.core.errors import InputFileError
from carbonclap_xl.core.issues import SEVERITY_FR, Severity
from carbonclap_xl.core.model import Phase
from carbonclap_xl.core.numbers import fr_mass
from carbonclap_xl.core.text import printable, shorten

SUMMARY_COLUMNS = ("file", "status", "code", "title", "phase", "total_forecast_kgco2e",
                   "total_final_kgco2e", "errors", "warnings", "reason", "factor_edition",
                   "attribution")


def summary_row(doc: dict[str, Any]) -> dict[str, Any]:
    """One CSV row of the batch summary (``core.csvout`` writes it: every text field made
    safe for a spreadsheet, figures in the chosen format)."""
    production = doc.get("workbook", {}).get("production", {})
    totals = doc.get("total_kgco2e", {})
    rejection = doc.get("rejection") or {}
    row = {"file": doc["file"], "status": doc["status"], "code": rejection.get("code", ""),
           "title": production.get("title") or "", "phase": doc.get("phase") or "",
           "total_forecast_kgco2e": totals.get("forecast", ""),
           "total_final_kgco2e": totals.get("final", ""),
           "errors": doc["counts"]["errors"], "warnings": doc["counts"]["warnings"],
           "reason": rejection.get("reason", ""),
           "factor_edition": doc.get("factor_edition", {}).get("name", ""),
           "attribution": " ; ".join(doc.get("attribution", []))}
    return row


def _report_lines(doc: dict[str, Any], verbose: bool) -> list[str]:
    """How a report is printed; the submission's text cannot drive the terminal."""
    name = printable(doc["file"])
    if doc["status"] == "rejected":
        r = doc["rejection"]
        return [f"REJETÉ   {name} : {printable(r['reason'])} [{r['code']}]"]
    c = doc["counts"]
    head = "ERREURS " if doc["status"] == "errors" else "OK      "
    total = doc["total_kgco2e"]
    lines = [f"{head} {name} : {c['errors']} erreur(s), {c['warnings']} avertissement(s) ; "
             f"prévisionnel {fr_mass(total['forecast'])}, définitif {fr_mass(total['final'])}"]
    for issue in doc["issues"]:
        if issue["severity"] == "info" and not verbose:
            continue
        where = f"{issue['sheet']}!{issue['cell']}" if issue.get("cell") else (
            issue.get("sheet") or "classeur")
        severity = SEVERITY_FR.get(Severity(issue["severity"]), issue["severity"])
        lines.append(printable(f"    {severity:<13} {issue['code']:<26} "
                               f"{shorten(where, 60):<16} {issue['message']}"))
    return lines


class _JsonStream:
    """``{"schema_version", "files": [...], "summary"}`` written one report at a time (the
    same document as ``core.result.batch_document``)."""

    def __init__(self, out: BinaryIO) -> None:
        from carbonclap_xl.core.result import SCHEMA_VERSION, STATUSES

        self.out = out
        self.count = {s: 0 for s in STATUSES}
        out.write(b'{\n  "schema_version": "' + SCHEMA_VERSION.encode() + b'",\n  "files": [')

    def add(self, doc: dict[str, Any]) -> None:
        from carbonclap_xl.core.result import dumps

        first = not any(self.count.values())
        self.count[doc["status"]] = self.count.get(doc["status"], 0) + 1
        body = dumps(doc).rstrip(b"\n").replace(b"\n", b"\n    ")
        self.out.write((b"\n    " if first else b",\n    ") + body)

    def close(self) -> None:
        from carbonclap_xl.core.result import dumps

        summary = dumps(self.count).rstrip(b"\n").replace(b"\n", b"\n  ")
        self.out.write(b"\n  ],\n  \"summary\": " + summary + b"\n}\n")


@contextlib.contextmanager
def _output(target: str | None, encoding: str | None = None) -> Iterator[Any]:
    """Where a report goes: nothing, stdout (``-``), or a file written atomically; a binary
    stream, or a text stream in ``encoding`` (``newline=""``, as the csv module wants)."""
    from carbonclap_xl.core.atomic import atomic_file

    if target is None:
        yield None
        return
    with contextlib.ExitStack() as stack:
        if target == "-":
            sys.stdout.flush()
            handle: BinaryIO = sys.stdout.buffer
        else:
            handle = stack.enter_context(atomic_file(Path(target)))
        if encoding is None:
            yield handle
        else:
            text = io.TextIOWrapper(handle, encoding=encoding, newline="")
            try:
                yield text
                text.flush()
            finally:
                text.detach()
        handle.flush()


def cmd_validate(args: argparse.Namespace) -> int:
    from carbonclap_xl.cli.progress import Progress
    from carbonclap_xl.cli.workbook import csv_instead_of_workbook
    from carbonclap_xl.core.csvout import CSV_FORMATS, CsvWriter
    from carbonclap_xl.core.factors import credit_line
    from carbonclap_xl.validation.batch import BatchOptions, validate_paths

    paths = list(args.files)
    if args.json == "-" and args.csv == "-":
        raise InputFileError("-", "--json - et --csv - ne peuvent pas partager la sortie "
                                  "standard : écrivez l'un des deux dans un fichier")
    for path in paths:  # rejected below like any non-workbook; the way out said first
        text_name = Path(path).suffix.lower() in (".csv", ".tsv", ".txt")
        if text_name and Path(path).is_file() and (hint := csv_instead_of_workbook(Path(path))):
            print(printable(f"{path} : {hint}"), file=sys.stderr)
    options = BatchOptions(phase=args.phase, jobs=args.jobs, timeout_s=args.timeout,
                           memory_mb=args.memory_mb)
    csv_format = CSV_FORMATS[args.csv_format]
    # stdout may carry the JSON (or the CSV): the lines for people then go to stderr
    out: TextIO = sys.stderr if "-" in (args.json, args.csv) else sys.stdout
    # the bar: on stderr, only when it is a terminal and there are several files
    bar = Progress.on(sys.stderr, len(paths), wanted=len(paths) > 1)
    edition: tuple[str, list[dict[str, str]]] | None = None
    with _output(args.json) as json_out, \
            _output(args.csv, csv_format.encoding) as csv_out, bar:
        stream = _JsonStream(json_out) if json_out is not None else None
        writer = None if csv_out is None else CsvWriter(csv_out, SUMMARY_COLUMNS, csv_format)
        counts = {"ok": 0, "errors": 0, "rejected": 0}
        for doc in validate_paths(paths, options):
            counts[doc["status"]] += 1
            if stream is not None:
                stream.add(doc)
            if writer is not None:
                writer.row(summary_row(doc))
            if edition is None and doc.get("factor_edition", {}).get("sources"):
                edition = (doc["factor_edition"].get("edition", ""),
                           doc["factor_edition"]["sources"])
            # with the bar, files without problems are only counted (-v lists them)
            if not bar.active or args.verbose or doc["status"] != "ok":
                bar.echo("\n".join(_report_lines(doc, args.verbose)), out)
            bar.advance(label=Path(doc["file"]).name)
        if stream is not None:
            stream.close()
    print(f"{len(paths)} fichier(s) : {counts['ok']} conforme(s), {counts['errors']} avec "
          f"erreurs, {counts['rejected']} rejeté(s).", file=out)
    if edition:  # the figures shown carry their sources' credit (full texts: --json, --csv)
        print(credit_line(*edition), file=out)
    if counts["rejected"]:
        return EXIT_UNREADABLE
    return EXIT_ISSUES if counts["errors"] else EXIT_OK


def register(sub: Any) -> None:
    from carbonclap_xl.validation import MAX_MEMORY_MB, MAX_TIMEOUT_S

    val = sub.add_parser(
        "validate", help="valider des classeurs déposés (sans Excel, sans leur faire confiance)",
        description="Valide des classeurs déposés : chaque fichier est inspecté puis analysé "
                    "dans un processus\nà part, limité en mémoire et en temps ; le bilan est "
                    "recalculé depuis les quantités saisies.",
        epilog=examples("carbonclap-xl validate depot.xlsx",
                        "carbonclap-xl validate depots/*.xlsx --jobs 2 --json rapport.json "
                        "--csv synthese.csv",
                        "carbonclap-xl validate depots/*.xlsx --phase final",
                        "carbonclap-xl validate depots/*.xlsx --csv synthese.csv "
                        "--csv-format plain"))
    val.add_argument("files", nargs="+", metavar="FICHIER", help="classeurs à valider")
    val.add_argument("--json", metavar="FICHIER|-",
                     help="un rapport JSON par fichier (- : sur la sortie standard)")
    val.add_argument("--csv", metavar="FICHIER|-",
                     help="tableau récapitulatif du lot (- : sur la sortie standard)")
    add_csv_format(val)
    val.add_argument("--phase", choices=[p.value for p in Phase],
                     help="phase attendue (défaut : celle déclarée dans le classeur)")
    val.add_argument("--jobs", type=positive_number(int, 1024, "processus"), default=2,
                     metavar="N", help="processus d'analyse (défaut 2 ; au plus un par "
                                       "processeur)")
    val.add_argument("--timeout", type=positive_number(float, MAX_TIMEOUT_S, "secondes"),
                     default=30.0, metavar="SECONDES",
                     help="temps maximal par fichier (défaut 30)")
    val.add_argument("--memory-mb", type=positive_number(int, MAX_MEMORY_MB, "Mo"),
                     default=1024, metavar="MO",
                     help="mémoire maximale par fichier en Mo (défaut 1024)")
    val.add_argument("-v", "--verbose", action="store_true", help="afficher aussi les infos")
    val.set_defaults(func=cmd_validate)
