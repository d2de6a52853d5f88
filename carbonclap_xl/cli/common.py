"""What every command shares: exit codes, a French argument parser, JSON output, human
output, atomic file writes."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

EXIT_OK, EXIT_ISSUES, EXIT_UNREADABLE = 0, 1, 2


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, flushed,
    fsynced and renamed (``core.atomic``): a failure (full disk, kill) leaves no file under
    the final name."""
    from carbonclap_xl.core.atomic import write_atomic as write

    write(path, data)


def emit_json(doc: Any, target: str) -> None:
    """``doc`` as JSON on stdout (``-``) or in a file (written atomically)."""
    from carbonclap_xl.core.atomic import atomic_file
    from carbonclap_xl.core.result import dump

    if target == "-":
        try:
            dump(doc, sys.stdout.buffer)
            sys.stdout.flush()
        except BrokenPipeError:  # the reader stopped early (`| head`): the summary on stderr
            # and the exit code still tell how the run went; what is left goes nowhere
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
    else:
        with atomic_file(Path(target)) as handle:
            dump(doc, handle)


def say(text: str, json_target: str | None) -> None:
    """Human output goes to stdout, or stderr when stdout carries the JSON."""
    print(text, file=sys.stderr if json_target == "-" else sys.stdout)


# --------------------------------------------------------------------------- French argparse

_ERRORS_FR: tuple[tuple[str, str], ...] = (
    (r"^the following arguments are required: (.*)$", r"arguments obligatoires manquants : \1"),
    (r"^unrecognized arguments: (.*)$", r"arguments non reconnus : \1"),
    (r"^argument (.*?): invalid choice: (.*?) \(choose from (.*)\)$",
     r"argument \1 : choix invalide \2 (choix possibles : \3)"),
    (r"^argument (.*?): invalid (\w+) value: (.*)$", r"argument \1 : valeur invalide \3"),
    (r"^argument (.*?): expected one argument$", r"argument \1 : une valeur est attendue"),
    (r"^argument (.*?): expected at least one argument$",
     r"argument \1 : au moins une valeur est attendue"),
    (r"^argument (.*?): not allowed with argument (.*)$",
     r"argument \1 : incompatible avec l'argument \2"),
    (r"^one of the arguments (.*) is required$", r"l'un des arguments \1 est obligatoire"),
    (r"^ambiguous option: (.*?) could match (.*)$", r"option ambiguë : \1 peut désigner \2"),
    (r"^argument (.*?): ignored explicit argument (.*)$",
     r"argument \1 : valeur \2 inattendue"),
    (r"^argument (\S+?): (.*)$", r"argument \1 : \2"),  # our own (French) type errors
)


def translate_error(message: str) -> str:
    """An argparse error message in French (unchanged when it is not one argparse writes)."""
    import re

    for pattern, replacement in _ERRORS_FR:
        if re.match(pattern, message):
            return re.sub(pattern, replacement, message)
    return message


class FrenchHelpFormatter(argparse.RawDescriptionHelpFormatter):
    def add_usage(self, usage: Any, actions: Any, groups: Any, prefix: str | None = None) -> None:
        super().add_usage(usage, actions, groups, "usage : " if prefix is None else prefix)


class FrenchParser(argparse.ArgumentParser):
    """argparse speaking French: usage, section titles, -h, and its error messages.

    Every subcommand parser is one too (``add_subparsers`` uses the parent's class), so a
    command module only calls ``sub.add_parser(...)``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", FrenchHelpFormatter)
        add_help = kwargs.pop("add_help", True)
        super().__init__(*args, add_help=False, **kwargs)
        # argparse writes "title:"; French typography wants a space before the colon
        self._positionals.title = "arguments "
        self._optionals.title = "options "
        if add_help:
            self.add_argument("-h", "--help", action="help", default=argparse.SUPPRESS,
                              help="afficher cette aide et quitter")

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_UNREADABLE, f"{self.prog} : erreur : {translate_error(message)}\n")


def examples(*lines: str) -> str:
    """An ``epilog`` listing examples of a command."""
    return "exemples :\n" + "\n".join(f"  {line}" for line in lines)


def positive_int(text: str) -> int:
    """argparse type: an integer ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"« {text} » n'est pas un nombre entier") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} : il faut un nombre entier au moins égal à 1")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        raise argparse.ArgumentTypeError(f"« {text} » n'est pas un nombre") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} : il faut un nombre positif")
    return value


def positive_number(kind: type, high: float, unit: str) -> Callable[[str], Any]:
    """An argparse ``type`` for a number in ``]0, high]`` (``kind`` int or float), with a
    French message otherwise: ``--timeout 0`` is refused before anything starts."""
    from carbonclap_xl.core.numbers import fr_number

    expected = f"un nombre {'entier ' if kind is int else ''}de {unit} strictement positif, " \
               f"au plus {fr_number(high, 0)}"

    def parse(text: str) -> Any:
        try:
            value = kind(text.replace(",", ".") if kind is float else text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"« {text} » : donnez {expected}") from None
        if not (isinstance(value, int) or math.isfinite(value)) or not 0 < value <= high:
            raise argparse.ArgumentTypeError(f"{text} : donnez {expected}")
        return value
    parse.__name__ = kind.__name__
    return parse


def add_csv_format(parser: argparse.ArgumentParser, what: str = "du CSV") -> None:
    """The ``--csv-format excel-fr|plain`` option of every command that writes a CSV for
    people (the formats: ``core.csvout``)."""
    from carbonclap_xl.core.csvout import CSV_FORMATS, DEFAULT_CSV_FORMAT

    parser.add_argument(
        "--csv-format", choices=list(CSV_FORMATS), default=DEFAULT_CSV_FORMAT.name,
        metavar="|".join(CSV_FORMATS),
        help=f"format {what} : " + " ; ".join(
            f"{f.name}{' (défaut)' if f is DEFAULT_CSV_FORMAT else ''} — {f.help_fr}"
            for f in CSV_FORMATS.values()))
