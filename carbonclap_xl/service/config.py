"""Configuration of the validation service (no web framework imported here)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from carbonclap_xl.core.errors import InputFileError

TOKEN_ENV = "CARBONCLAP_XL_TOKEN"


@dataclass(frozen=True)
class ServiceConfig:
    """What ``carbonclap-xl serve`` passes to :func:`carbonclap_xl.service.app.create_app`.

    ``workers`` is the number of sandbox processes that parse uploads (each about 270 MB warm,
    at most ``memory_mb`` more per file); ``max_pending`` bounds the uploads accepted at once
    (waiting or in analysis): beyond it the service answers 503 with ``Retry-After``.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    token: str | None = None
    storage: Path | None = None
    max_upload_mb: float = 20.0
    timeout_s: float = 30.0
    memory_mb: int = 1024
    max_pending: int | None = None  # default: 8 per worker
    temp_dir: Path | None = None  # default: the system's

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError("workers doit être >= 1")
        if not self.max_upload_mb > 0:
            raise ValueError("max_upload_mb doit être > 0")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)

    @property
    def pending_limit(self) -> int:
        return self.max_pending or 8 * self.workers


def read_token(token_file: str | None, environ: dict[str, str] | None = None) -> str | None:
    """The bearer token: from ``token_file`` when given, else ``$CARBONCLAP_XL_TOKEN``, else
    None (no authentication). Surrounding blanks are ignored; an empty token is refused."""
    environ = dict(os.environ) if environ is None else environ
    if token_file:
        path = Path(token_file)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputFileError(token_file, "fichier de jeton introuvable") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputFileError(token_file, f"fichier de jeton illisible ({exc})") from None
        token = text.strip()
        if not token:
            raise InputFileError(token_file, "fichier de jeton vide")
        return token
    token = environ.get(TOKEN_ENV, "").strip()
    return token or None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
