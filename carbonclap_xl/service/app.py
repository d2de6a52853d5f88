"""The FastAPI application: ``create_app(config) -> FastAPI``.

Routes: ``GET /`` (the French upload page), ``POST /api/validate``, ``POST /api/process``,
``GET /api/factors``, ``GET /api/activities``, ``GET /api/consolidate`` (with a storage
folder), ``GET /healthz``, ``GET /openapi.json`` and ``GET /docs``. Every error is JSON,
``{"error": {"code": …, "message": …}}`` with a French message and its HTTP status; a
rejected workbook answers with its report plus that ``error`` object.

Stateless: nothing lives between requests except the warm sandbox workers, so the service
scales by running more instances behind any load balancer (``docs/deploy.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import json
import logging
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Annotated, Any, ClassVar

import anyio
import uvicorn
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from carbonclap_xl import __version__
from carbonclap_xl.core.model import NATURES, POSTES
from carbonclap_xl.core.result import dumps
from carbonclap_xl.service.analysis import (
    Analyzer,
    process_upload,
    rejection_status,
    report_from,
    validate_upload,
)
from carbonclap_xl.service.config import ServiceConfig
from carbonclap_xl.service.consolidate import csv_data, rows_from_report
from carbonclap_xl.service.docs_page import render_docs
from carbonclap_xl.service.storage import Storage
from carbonclap_xl.service.uploads import (
    UploadError,
    content_disposition,
    processed_name,
    receive_upload,
)
from carbonclap_xl.validation.sandbox import SandboxError

log = logging.getLogger("carbonclap_xl.service")
HERE = Path(__file__).resolve().parent
MEDIA_TYPES = {
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".xlsm": "application/vnd.ms-excel.sheet.macroEnabled.12",
}
PAGE_CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
            "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'")


class PhaseParam(StrEnum):
    forecast = "forecast"
    final = "final"


class CsvFormatParam(StrEnum):  # the formats of core.csvout
    excel_fr = "excel-fr"
    plain = "plain"


PhaseQuery = Annotated[PhaseParam | None, Query(
    description="phase attendue (défaut : celle déclarée dans le classeur)")]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status, code, message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def json_response(doc: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    return Response(dumps(doc, indent=False), status_code=status, headers=headers,
                     media_type="application/json; charset=utf-8")


# --------------------------------------------------------------------------- OpenAPI bits

UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary",
                            "description": "le classeur (.xlsx ou .xlsm)"}}}}}}}
ERROR_SCHEMA = {"type": "object", "properties": {"error": {"type": "object", "properties": {
    "code": {"type": "string"}, "message": {"type": "string"}}}}}


def _responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "requête mal formée", 401: "jeton absent ou invalide",
        413: "fichier plus gros que la limite du service",
        415: "pas un classeur .xlsx/.xlsm (CSV, .xls, .ods renommés…) ou pas du multipart",
        422: "classeur rejeté (illisible, dangereux, trop coûteux) ou paramètre invalide ; le "
             "corps porte le rapport et « error »",
        503: "service occupé : réessayer après Retry-After",
    }
    return {s: {"description": text[s],
                "content": {"application/json": {"schema": ERROR_SCHEMA}}} for s in statuses}


# --------------------------------------------------------------------------- the app


class _State:
    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.analyzer: Analyzer | None = None
        self.slots: asyncio.Semaphore | None = None
        self.pending = 0
        self.storage = Storage(config.storage) if config.storage else None


def create_app(config: ServiceConfig | None = None) -> FastAPI:
    """The service, configured; its sandbox workers start with the application (lifespan)."""
    config = config or ServiceConfig()
    state = _State(config)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state.analyzer = await anyio.to_thread.run_sync(
            partial(Analyzer, config.workers, config.timeout_s, config.memory_mb))
        state.slots = asyncio.Semaphore(config.workers)
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(state.analyzer.close)

    app = FastAPI(
        title="Carbon'Clap XL — service de validation",
        version=__version__,
        description="Valider un classeur Carbon'Clap XL (bilan carbone d'une production "
                    "audiovisuelle), obtenir le classeur calculé, consulter les facteurs. "
                    "Quand un jeton est configuré, `/api/*` demande "
                    "`Authorization: Bearer <jeton>`.",
        docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.service = state
    app.add_middleware(_SecurityHeaders)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    _install_error_handlers(app)

    async def require_token(request: Request) -> None:
        if config.token is None:
            return
        scheme, _, supplied = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                supplied.strip().encode(), config.token.encode()):
            raise ApiError(401, "UNAUTHORIZED", "Jeton d'accès absent ou invalide : envoyez "
                           "l'en-tête « Authorization: Bearer <jeton> ».",
                           {"WWW-Authenticate": "Bearer"})

    auth = [Depends(require_token)]

    @contextlib.asynccontextmanager
    async def admitted() -> AsyncIterator[Path]:
        """One upload: admission (503 beyond the limit), a private temporary folder that is
        always removed."""
        if state.pending >= config.pending_limit:
            raise ApiError(503, "BUSY", "Service occupé : réessayez dans quelques secondes.",
                           {"Retry-After": "5"})
        state.pending += 1
        directory = Path(tempfile.mkdtemp(prefix="carbonclap-",
                                          dir=config.temp_dir and str(config.temp_dir)))
        try:
            yield directory
        finally:
            state.pending -= 1
            await anyio.to_thread.run_sync(
                partial(shutil.rmtree, directory, ignore_errors=True))

    async def in_sandbox(fn: Callable[[Any], Any], item: Any) -> Any:
        assert state.analyzer is not None and state.slots is not None
        async with state.slots:
            try:
                return await anyio.to_thread.run_sync(state.analyzer.run, fn, item)
            except (SandboxError, OSError) as exc:
                log.error("sandbox: %s", exc)
                raise ApiError(503, "SANDBOX_UNAVAILABLE", "L'analyse est momentanément "
                               "indisponible : réessayez dans un instant.",
                               {"Retry-After": "5"}) from None

    async def receive(request: Request, directory: Path) -> Any:
        return await receive_upload(request.headers.get("content-type"),
                                    request.headers.get("content-length"), request.stream(),
                                    directory, config.max_upload_bytes)

    async def keep(path: Path, report: dict[str, Any]) -> None:
        if state.storage is not None and report["status"] != "rejected":
            ident = await anyio.to_thread.run_sync(state.storage.keep, path, report)
            report["submission"] = {"id": ident}

    def rejected_response(report: dict[str, Any]) -> Response:
        rejection = report["rejection"]
        return json_response({**report, **error_body(rejection["code"], rejection["reason"])},
                             rejection_status(rejection["code"]))

    # ----------------------------------------------------------------------- API

    @app.post("/api/validate", dependencies=auth, openapi_extra=UPLOAD_BODY,
              summary="Valider un classeur",
              responses=_responses(400, 401, 413, 415, 422, 503))
    async def api_validate(request: Request, phase: PhaseQuery = None) -> Response:
        """Le rapport de validation du classeur envoyé (champ multipart `file`), celui de
        `carbonclap-xl validate --json` : `status` (`ok`, `errors`, `rejected`), totaux par
        phase, par poste et par nature, incertitude, indicateurs, problèmes avec onglet et
        cellule. Un fichier rejeté répond 413, 415 ou 422 avec son rapport."""
        async with admitted() as directory:
            upload = await receive(request, directory)
            item = (str(upload.path), phase.value if phase else None)
            outcome = await in_sandbox(validate_upload, item)
            report = report_from(outcome, upload.filename, [str(upload.path), str(directory)])
            if report["status"] == "rejected":
                return rejected_response(report)
            await keep(upload.path, report)
            return json_response(report)

    @app.post("/api/process", dependencies=auth, openapi_extra=UPLOAD_BODY,
              summary="Calculer un classeur",
              response_class=Response,
              responses={200: {"description": "le classeur calculé (nom d'origine suivi de "
                                              "« -calcule »)", "content": {
                  MEDIA_TYPES[".xlsx"]: {"schema": {"type": "string", "format": "binary"}}}},
                         **_responses(400, 401, 413, 415, 422, 503)})
    async def api_process(request: Request, phase: PhaseQuery = None) -> Response:
        """Le classeur calculé (colonnes calculées, Synthèse et Contrôles écrits, comme
        `carbonclap-xl process`), ou le rapport JSON quand le fichier est rejeté ou n'est pas
        un classeur Carbon'Clap XL. Les en-têtes `X-CarbonClap-*` résument le verdict."""
        async with admitted() as directory:
            upload = await receive(request, directory)
            dst = directory / f"resultat{upload.path.suffix}"
            item = (str(upload.path), str(dst), phase.value if phase else None)
            outcome = await in_sandbox(process_upload, item)
            report = report_from(outcome, upload.filename,
                                 [str(upload.path), str(dst), str(directory)])
            if report["status"] == "rejected":
                return rejected_response(report)
            if not outcome.value["written"]:
                code = next((i["code"] for i in report["issues"]
                             if i["severity"] == "error"), "NOT_CARBONCLAP_WORKBOOK")
                return json_response({**report, **error_body(
                    code, "Ce fichier n'est pas un classeur Carbon'Clap XL : rien à calculer. "
                          "Partez du modèle (« carbonclap-xl new »).")}, 422)
            data = await anyio.to_thread.run_sync(dst.read_bytes)
            await keep(upload.path, report)
            counts, totals = report["counts"], report.get("total_kgco2e") or {}
            headers = {
                "Content-Disposition": content_disposition(
                    processed_name(upload.filename, upload.path.suffix)),
                "X-CarbonClap-Status": report["status"],
                "X-CarbonClap-Errors": str(counts.get("errors", 0)),
                "X-CarbonClap-Warnings": str(counts.get("warnings", 0)),
                "X-CarbonClap-Total-Forecast-KgCO2e": f"{totals.get('forecast') or 0:.3f}",
                "X-CarbonClap-Total-Final-KgCO2e": f"{totals.get('final') or 0:.3f}",
                "Cache-Control": "no-store",
            }
            return Response(data, media_type=MEDIA_TYPES[upload.path.suffix], headers=headers)

    @app.get("/api/activities", dependencies=auth, summary="Activités du catalogue")
    async def api_activities(
            search: Annotated[str | None, Query(max_length=200,
                                                description="mots à chercher")] = None,
            poste: Annotated[str | None, Query(max_length=40, description="id de poste")] = None,
            limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> Response:
        """Les activités du catalogue (menu déroulant du classeur), avec leur facteur."""
        from carbonclap_xl.core.factors import fold, load_edition

        edition = load_edition()
        words = fold(search).split() if search else []
        found = [a for a in edition.activities.values()
                 if (poste is None or poste in a.postes)
                 and all(w in fold(f"{a.id} {a.label_fr} {a.label_en} {a.factor.label_fr}")
                         for w in words)]
        return json_response({
            "factor_edition": edition.name, "attribution": edition.attributions(),
            "count": len(found), "activities": [_activity(a) for a in found[:limit]]})

    @app.get("/api/factors", dependencies=auth, summary="Facteurs d'émission")
    async def api_factors(
            search: Annotated[str | None, Query(max_length=200,
                                                description="mots à chercher")] = None,
            catalogue: Annotated[bool, Query(description="seulement ceux du catalogue")] = False,
            limit: Annotated[int, Query(ge=1, le=1000)] = 100,
            offset: Annotated[int, Query(ge=0)] = 0) -> Response:
        """Les facteurs de toutes les sources (Base Empreinte, DESNZ…), les valides d'abord."""
        from carbonclap_xl.core.factors import load_edition

        edition = load_edition()
        factors = await anyio.to_thread.run_sync(edition.search, search)
        if catalogue:
            ids = {a.factor.id for a in edition.activities.values()}
            factors = [f for f in factors if f.id in ids]
        factors = sorted(factors, key=lambda f: f.status != "valid")
        return json_response({
            "factor_edition": edition.name, "attribution": edition.attributions(),
            "count": len(factors), "offset": offset,
            "factors": [_factor(f) for f in factors[offset:offset + limit]]})

    @app.get("/api/consolidate", dependencies=auth, summary="Jeu de données consolidé (CSV)",
             response_class=Response, responses={200: {"content": {"text/csv": {}}}})
    async def api_consolidate(
            csv_format: Annotated[CsvFormatParam, Query(
                alias="format",
                description="excel-fr (défaut) : « ; », virgule décimale, UTF-8 avec BOM, "
                            "pour Excel en français ; plain : « , », point décimal, UTF-8 "
                            "sans BOM, chiffres exacts")
            ] = CsvFormatParam.excel_fr) -> Response:
        """Une ligne par dépôt conservé × poste × phase (type, budget, jours, intensités),
        comme `carbonclap-xl consolidate`. Seulement avec un dossier de conservation."""
        from carbonclap_xl.core.csvout import CSV_FORMATS

        if state.storage is None:
            raise ApiError(404, "NO_STORAGE", "Ce service ne conserve aucun dépôt (démarrez-le "
                           "avec --storage DOSSIER pour en garder et les consolider).")

        def build() -> bytes:
            assert state.storage is not None
            return csv_data((row for doc in state.storage.reports()
                             for row in rows_from_report(doc)), CSV_FORMATS[csv_format.value])

        data = await anyio.to_thread.run_sync(build)
        return Response(data, media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": content_disposition("consolidation.csv"),
            "Cache-Control": "no-store"})

    @app.get("/healthz", summary="État du service")
    async def healthz() -> Response:
        analyzer = state.analyzer
        return json_response({"status": "ok", "version": __version__,
                              "workers": config.workers,
                              "idle_workers": analyzer.idle if analyzer else 0,
                              "pending": state.pending})

    # ----------------------------------------------------------------------- pages

    page = (HERE / "static" / "index.html").read_text(encoding="utf-8")

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        from carbonclap_xl.core.factors import load_edition

        edition = load_edition()
        settings = {
            "maxUploadBytes": config.max_upload_bytes,
            "tokenRequired": config.token is not None,
            "postes": {p.id: p.label_fr for p in POSTES},
            "natures": {n.id: n.label_fr for n in NATURES},
        }
        mb = f"{config.max_upload_mb:g}".replace(".", ",")
        values = {
            "version": html.escape(__version__),
            "max_upload": html.escape(f"{mb} Mo"),
            "edition": html.escape(edition.name),
            "attribution": "".join(f"<li>{html.escape(a)}</li>"
                                   for a in edition.attributions()),
            # JSON in a non-executed script element: "<" escaped so no "</script>" closes it
            "settings": json.dumps(settings, ensure_ascii=False).replace("<", "\\u003c"),
            "token_hidden": "" if config.token else " hidden",
        }
        text = re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], page)
        return HTMLResponse(text, headers={"Content-Security-Policy": PAGE_CSP,
                                           "Cache-Control": "no-store"})

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(render_docs(app.openapi()),
                            headers={"Content-Security-Policy": PAGE_CSP})

    return app


def _factor(f: Any) -> dict[str, Any]:
    return {"id": f.id, "label_fr": f.label_fr, "label_en": f.label_en, "value": f.value,
            "unit": f.unit, "uncertainty_pct": f.uncertainty_pct, "status": f.status,
            "source_dataset": f.source_dataset, "source_edition": f.source_edition,
            "source_id": f.source_id, "category": f.category, "location": f.location}


def _activity(a: Any) -> dict[str, Any]:
    return {"id": a.id, "label_fr": a.label_fr, "label_en": a.label_en,
            "postes": list(a.postes), "nature": a.nature, "unit": a.unit, "note": a.note,
            "factor": _factor(a.factor)}


# --------------------------------------------------------------------------- errors

_HTTP_FR = {
    404: ("NOT_FOUND", "Adresse inconnue : voir /docs pour l'API."),
    405: ("METHOD_NOT_ALLOWED", "Méthode non permise sur cette adresse."),
}


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> Response:
        return json_response(error_body(exc.code, exc.message), exc.status, exc.headers)

    @app.exception_handler(UploadError)
    async def upload_error(_request: Request, exc: UploadError) -> Response:
        # a refused body may be half-read: close the connection rather than reuse it
        return json_response(error_body(exc.code, exc.message), exc.status,
                             {"Connection": "close"})

    @app.exception_handler(ClientDisconnect)
    async def disconnected(_request: Request, _exc: ClientDisconnect) -> Response:
        return json_response(error_body("CLIENT_DISCONNECTED", "Envoi interrompu."), 400)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> Response:
        where = [".".join(str(p) for p in e.get("loc", ())[1:]) or "requête"
                 for e in exc.errors()]
        return json_response(error_body(
            "INVALID_PARAMETER", f"Paramètre invalide : {', '.join(where)} (voir /docs)."), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        code, message = _HTTP_FR.get(exc.status_code, ("HTTP_ERROR", str(exc.detail)))
        return json_response(error_body(code, message), exc.status_code,
                             getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal(_request: Request, exc: Exception) -> Response:
        log.exception("erreur interne", exc_info=exc)
        return json_response(error_body("INTERNAL_ERROR", "Erreur interne du service (à "
                                        "signaler) ; le fichier n'a pas été conservé."), 500)


class _SecurityHeaders:
    """Headers every response carries (a pure ASGI middleware: the body is not buffered)."""

    HEADERS: ClassVar = [(b"x-content-type-options", b"nosniff"),
                         (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY")]

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                   *self.HEADERS]}
            await send(message)

        await self.app(scope, receive, sending)


def serve(config: ServiceConfig, log_level: str = "info") -> None:
    """Run the service with uvicorn until SIGINT/SIGTERM (``carbonclap-xl serve``)."""
    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level=log_level,
                server_header=False, timeout_keep_alive=5)
