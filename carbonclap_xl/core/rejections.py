"""Why a submitted file is rejected (exit 2): one enum of stable codes, one table of texts.

The safety gate, the sandbox, the readers and every report use these codes;
``docs/issue-codes.md`` is generated from ``REJECTION_TEXT``.
"""

from __future__ import annotations

from enum import StrEnum

from carbonclap_xl.core.errors import (
    CarbonClapError,
    HostileFile,
    InputFileError,
    WorkbookPatchError,
)


class RejectionCode(StrEnum):
    FILE_NOT_FOUND = "FILE_NOT_FOUND"
    EMPTY_FILE = "EMPTY_FILE"
    FILE_TOO_LARGE = "FILE_TOO_LARGE"
    ENCRYPTED = "ENCRYPTED"
    LEGACY_XLS = "LEGACY_XLS"
    ODS_FILE = "ODS_FILE"
    NOT_A_WORKBOOK = "NOT_A_WORKBOOK"
    CORRUPT_ZIP = "CORRUPT_ZIP"
    ZIP_BOMB = "ZIP_BOMB"
    PATH_TRAVERSAL = "PATH_TRAVERSAL"
    XML_ENTITY = "XML_ENTITY"
    SHEET_TOO_LARGE = "SHEET_TOO_LARGE"
    CORRUPT_WORKBOOK = "CORRUPT_WORKBOOK"
    INPUT_FILE_ERROR = "INPUT_FILE_ERROR"
    TIMEOUT = "TIMEOUT"
    MEMORY = "MEMORY"
    REPORT_TOO_LARGE = "REPORT_TOO_LARGE"
    WORKER_CRASHED = "WORKER_CRASHED"
    INTERNAL_ERROR = "INTERNAL_ERROR"


# the codes the safety gate itself raises, before any parser runs
GATE_CODES: tuple[RejectionCode, ...] = (
    RejectionCode.EMPTY_FILE, RejectionCode.FILE_TOO_LARGE, RejectionCode.ENCRYPTED,
    RejectionCode.LEGACY_XLS, RejectionCode.ODS_FILE, RejectionCode.NOT_A_WORKBOOK,
    RejectionCode.CORRUPT_ZIP, RejectionCode.ZIP_BOMB, RejectionCode.PATH_TRAVERSAL,
    RejectionCode.XML_ENTITY, RejectionCode.SHEET_TOO_LARGE, RejectionCode.CORRUPT_WORKBOOK,
)

REJECTION_TEXT: dict[RejectionCode, str] = {
    RejectionCode.FILE_NOT_FOUND: "Chemin introuvable, ou qui n'est pas un fichier.",
    RejectionCode.EMPTY_FILE: "Fichier vide (0 octet).",
    RejectionCode.FILE_TOO_LARGE: "Fichier plus gros que la limite (50 Mo).",
    RejectionCode.ENCRYPTED: "Classeur protégé par un mot de passe à l'ouverture.",
    RejectionCode.LEGACY_XLS: "Ancien format Excel 97-2003 (.xls) : à enregistrer en .xlsx.",
    RejectionCode.ODS_FILE: "Classeur OpenDocument (.ods) renommé : à enregistrer en .xlsx.",
    RejectionCode.NOT_A_WORKBOOK: "Pas un classeur Excel (CSV, HTML, PDF, document Word "
                                  "renommé, .xlsb…).",
    RejectionCode.CORRUPT_ZIP: "Archive tronquée ou endommagée (répertoire absent, CRC faux, "
                               "doublons).",
    RejectionCode.ZIP_BOMB: "Décompression anormale : trop de parties, partie ou total trop "
                            "gros, taux de compression suspect (décidé sur le répertoire, sans "
                            "décompresser).",
    RejectionCode.PATH_TRAVERSAL: "Chemin de partie ou de relation qui sort du classeur (../, /, "
                                  "\\, C:).",
    RejectionCode.XML_ENTITY: "Déclaration DOCTYPE ou ENTITY dans une partie XML (bombe "
                              "d'entités, entité externe).",
    RejectionCode.SHEET_TOO_LARGE: "Onglet déclaré ou utilisé au-delà des limites (200 000 "
                                   "lignes, 1 000 colonnes, 2 000 000 cellules), p. ex. "
                                   "A1:XFD1048576.",
    RejectionCode.CORRUPT_WORKBOOK: "Zip sain mais classeur incohérent (XML invalide, partie "
                                    "absente).",
    RejectionCode.INPUT_FILE_ERROR: "Classeur illisible par le lecteur de valeurs.",
    RejectionCode.TIMEOUT: "Analyse plus longue que la limite (30 s par défaut) : processus "
                           "arrêté.",
    RejectionCode.MEMORY: "Analyse au-delà de la mémoire autorisée (1 Go par défaut).",
    RejectionCode.REPORT_TOO_LARGE: "Rapport d'analyse au-delà de 16 Mo (problèmes répétés "
                                    "pourtant regroupés) : fichier rejeté, le lot continue.",
    RejectionCode.WORKER_CRASHED: "Le processus d'analyse est mort (p. ex. abandon de "
                                  "python-calamine) : fichier rejeté, le lot continue.",
    RejectionCode.INTERNAL_ERROR: "Défaut du programme (à signaler) : le fichier est rejeté, le "
                                  "lot continue.",
}


def rejection_code(exc: CarbonClapError) -> RejectionCode:
    """The code of an error that rejects a file."""
    if isinstance(exc, HostileFile):
        return RejectionCode(exc.code)
    if isinstance(exc, InputFileError):
        return RejectionCode.INPUT_FILE_ERROR
    if isinstance(exc, WorkbookPatchError):
        return RejectionCode.CORRUPT_WORKBOOK
    return RejectionCode.INTERNAL_ERROR


def rejections_markdown() -> str:
    rows = ["| code | motif |", "|---|---|"]
    rows += [f"| `{code}` | {text} |" for code, text in REJECTION_TEXT.items()]
    return "\n".join(rows) + "\n"
