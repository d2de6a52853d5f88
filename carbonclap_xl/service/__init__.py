"""The validation web service: an upload page, a JSON API and a consolidated export.

``create_app(config)`` (in :mod:`carbonclap_xl.service.app`) builds the FastAPI application;
``carbonclap-xl serve`` runs it with uvicorn. Only this room imports fastapi, starlette,
uvicorn and python-multipart (the ``service`` extra); :mod:`.config` and :mod:`.consolidate`
import none of them, so the CLI's ``consolidate`` works without the extra.

Every upload is untrusted: it is streamed to a private temporary folder with the size cap
enforced while reading, parsed only inside a sandbox worker (:mod:`.analysis`), and the
folder is removed before the response leaves, unless the operator configured a storage
folder (then accepted submissions and their reports are kept there, under names the server
chooses).
"""
