"""``carbonclap-xl addin build | install | check``: the Excel add-in (``CarbonClap.xlam``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from carbonclap_xl.cli.common import EXIT_ISSUES, EXIT_OK, examples


def cmd_build(args: argparse.Namespace) -> int:
    from carbonclap_xl.core.errors import InputFileError
    from carbonclap_xl.excel.addin import build_addin

    out = Path(args.output)
    if out.exists() and not args.force:
        raise InputFileError(str(out), "existe déjà : --force pour le remplacer")
    report = build_addin(out)
    print(f"Complément construit : {report.out_path} ({report.seconds:.1f} s)")
    print(f"  modules VBA : {', '.join(report.modules)}")
    print(f"  fonctions : {', '.join(report.udfs)}")
    print(f"  xlwings modifié : {', '.join(report.patches)}")
    return EXIT_OK


def cmd_install(args: argparse.Namespace) -> int:
    from carbonclap_xl.excel.install import install

    installed = install(addin=Path(args.file) if args.file else None)
    print("\n".join(installed.lines()))
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from carbonclap_xl.core.errors import InputFileError
    from carbonclap_xl.excel import HANDLERS
    from carbonclap_xl.excel.check import check_addin

    path = Path(args.file)
    if not path.is_file():
        raise InputFileError(str(path), "fichier introuvable")
    report = check_addin(path, handlers=HANDLERS, show_diff=args.diff)
    print("\n".join(report.lines))
    return EXIT_ISSUES if report.failures else EXIT_OK


def register(sub: Any) -> None:
    addin = sub.add_parser("addin", help="le complément Excel (onglet Carbon'Clap)",
                           description="Construit, vérifie et installe le complément Excel "
                                       "CarbonClap.xlam (onglet Carbon'Clap, fonctions CC_…).")
    commands = addin.add_subparsers(dest="addin_command", required=True, metavar="ACTION",
                                    title="actions ")
    build = commands.add_parser(
        "build", help="construire CarbonClap.xlam (outils : pip install "
                      "'carbonclap_xl[addin,excel]')",
        epilog=examples("carbonclap-xl addin build -o CarbonClap.xlam"))
    build.add_argument("-o", "--output", default="CarbonClap.xlam", metavar="FICHIER.xlam",
                       help="fichier à écrire (défaut : CarbonClap.xlam)")
    build.add_argument("--force", action="store_true", help="remplacer le fichier s'il existe")
    build.set_defaults(func=cmd_build)
    install = commands.add_parser(
        "install", help="installer le complément pour Excel (Windows, macOS)",
        epilog=examples("carbonclap-xl addin install",
                        "carbonclap-xl addin install --file MonComplement.xlam"))
    install.add_argument("--file", metavar="FICHIER.xlam",
                         help="un autre complément que celui livré avec le paquet")
    install.set_defaults(func=cmd_install)
    check = commands.add_parser(
        "check", help="vérifier chaque bouton : rappel VBA et fonction Python atteinte",
        epilog=examples("carbonclap-xl addin check CarbonClap.xlam",
                        "carbonclap-xl addin check CarbonClap.xlam --diff"))
    check.add_argument("file", metavar="FICHIER.xlam", help="le complément à vérifier")
    check.add_argument("--diff", action="store_true",
                       help="montrer les modifications du VBA de xlwings")
    check.set_defaults(func=cmd_check)
