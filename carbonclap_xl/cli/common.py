"""What every command shares: exit codes, a French argument parser, JSON output, human
output, atomic file writes."""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

EXIT_OK, EXIT_ISSUES, EXIT_UNREADABLE = 0, 1, 2

# argparse's own messages (it has no French catalogue), translated where users meet them
_ARGPARSE_FR: tuple[tuple[str, str], ...] = (
    (r"^the following arguments are required: (.*)$",
     r"argument(s) obligatoire(s) manquant(s) : \1"),
    (r"^unrecognized arguments: (.*)$", r"argument(s) inconnu(s) : \1"),
    (r"^argument (\S+): invalid choice: (.*) \(choose from (.*)\)$",
     r"argument \1 : choix invalide \2 (possibles : \3)"),
    (r"^argument (\S+): invalid \S+ value: (.*)$", r"argument \1 : valeur invalide \2"),
    (r"^argument (\S+): expected one argument$", r"argument \1 : une valeur est attendue"),
    (r"^argument (\S+): not allowed with argument (.*)$",
     r"argument \1 : incompatible avec l'argument \2"),
    (r"^argument (\S+): (.*)$", r"argument \1 : \2"),
)


class FrenchArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one French line (exit 2, never a traceback)."""

    def error(self, message: str) -> NoReturn:
        for pattern, french in _ARGPARSE_FR:
            translated, n = re.subn(pattern, french, message)
            if n:
                message = translated
                break
        self.print_usage(sys.stderr)
        self.exit(EXIT_UNREADABLE, f"{self.prog} : erreur : {message}\n")


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


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, flushed,
    fsynced and renamed (``core.atomic``): a failure (full disk, kill) leaves no file under
    the final name."""
    from carbonclap_xl.core.atomic import write_atomic as write

    write(path, data)


def emit_json(doc: Any, target: str) -> None:
    """``doc`` as JSON on stdout (``-``) or in a file (written atomically)."""
    from carbonclap_xl.core.result import dumps

    data = dumps(doc)
    if target == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        write_atomic(Path(target), data)


def say(text: str, json_target: str | None) -> None:
    """Human output goes to stdout, or stderr when stdout carries the JSON."""
    print(text, file=sys.stderr if json_target == "-" else sys.stdout)
