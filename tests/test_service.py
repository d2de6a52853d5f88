"""The validation service over real HTTP: a `carbonclap-xl serve` subprocess on a free
loopback port, called with httpx (valid, faulty and hostile workbooks, oversize bodies,
concurrent uploads, token on and off, storage and consolidation)."""

from __future__ import annotations

import concurrent.futures
import csv
import io
import json
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from hostile_corpus import CORPUS  # noqa: E402
from servicehelpers import TELEFILM, faulty_workbook, running_server  # noqa: E402

from carbonclap_xl.service.analysis import rejection_status  # noqa: E402
from carbonclap_xl.validation.batch import BatchOptions, validate_paths  # noqa: E402

TOKEN = "s3cret-jeton-de-test"
CLIENT_TIMEOUT = httpx.Timeout(60.0)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("corpus")
    files = {name: build(directory) for name, (build, _code) in CORPUS.items()}
    files["faulty.xlsx"] = faulty_workbook(directory)
    return files


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """No token, a 1 MB upload cap, a storage folder."""
    root = tmp_path_factory.mktemp("server")
    storage = root / "depots"
    with running_server(root, "--workers", "2", "--max-upload-mb", "1",
                        "--storage", str(storage)) as (base, tmpdir, _proc):
        yield {"base": base, "tmpdir": tmpdir, "storage": storage}


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("token-server")
    with running_server(root, "--workers", "1",
                        env={"CARBONCLAP_XL_TOKEN": TOKEN}) as (base, _tmpdir, _proc):
        yield base


def upload(base: str, path: Path, endpoint: str = "validate", name: str | None = None,
           headers: dict[str, str] | None = None, params: dict[str, str] | None = None
           ) -> httpx.Response:
    with open(path, "rb") as fh:
        return httpx.post(f"{base}/api/{endpoint}", files={"file": (name or path.name, fh)},
                          headers=headers, params=params, timeout=CLIENT_TIMEOUT)


def assert_no_leftovers(tmpdir: Path) -> None:
    assert list(tmpdir.iterdir()) == [], "temporary upload folders left behind"


# --------------------------------------------------------------------------- basics


def test_health_openapi_docs_and_page(server) -> None:
    base = server["base"]
    health = httpx.get(f"{base}/healthz").json()
    assert health["status"] == "ok" and health["workers"] == 2
    schema = httpx.get(f"{base}/openapi.json").json()
    for path in ("/api/validate", "/api/process", "/api/factors", "/api/activities",
                 "/api/consolidate", "/healthz"):
        assert path in schema["paths"], path
    body = schema["paths"]["/api/validate"]["post"]["requestBody"]["content"]
    assert "file" in body["multipart/form-data"]["schema"]["properties"]
    docs = httpx.get(f"{base}/docs")
    assert docs.status_code == 200 and "/api/process" in docs.text
    page = httpx.get(f"{base}/")
    assert page.status_code == 200
    assert '<html lang="fr">' in page.text and "Déposer le classeur" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    # everything the page loads is served here: no CDN, no external font or script
    for attr in ('src="http', "src='http", 'href="http', "url(http", "@import"):
        assert attr not in page.text
    for asset in ("/static/app.js", "/static/app.css"):
        response = httpx.get(f"{base}{asset}")
        assert response.status_code == 200
        assert "http://" not in response.text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in response.text
    assert page.headers["x-content-type-options"] == "nosniff"


def test_unknown_address_and_method_are_json_in_french(server) -> None:
    missing = httpx.get(f"{server['base']}/api/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"].startswith("Adresse inconnue")
    wrong = httpx.get(f"{server['base']}/api/validate")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


# --------------------------------------------------------------------------- validate


def test_valid_workbook_gives_the_validate_command_report(server) -> None:
    response = upload(server["base"], TELEFILM)
    assert response.status_code == 200, response.text
    report = response.json()
    expected = next(validate_paths([str(TELEFILM)], BatchOptions(jobs=1)))
    assert report["status"] == expected["status"] == "ok"
    assert report["total_kgco2e"] == pytest.approx(expected["total_kgco2e"])
    assert report["by_poste"].keys() == expected["by_poste"].keys()
    assert report["counts"] == expected["counts"]
    assert report["file"] == "telefilm.xlsx"
    assert report["workbook"]["path"] == "telefilm.xlsx"
    # the server's temporary paths never leak into a report
    assert str(server["tmpdir"]) not in response.text and "classeur.xlsx" not in response.text
    assert_no_leftovers(server["tmpdir"])


def test_faulty_workbook_lists_issues_with_sheet_and_cell(server, corpus) -> None:
    response = upload(server["base"], corpus["faulty.xlsx"])
    assert response.status_code == 200
    report = response.json()
    assert report["status"] == "errors"
    unknown = [i for i in report["issues"] if i["code"] == "ACTIVITY_UNKNOWN"]
    assert unknown and unknown[0]["sheet"] == "Régie" and unknown[0]["cell"]
    assert report["workbook"]["production"]["title"] == '<b>Film</b> & "test"'


def test_phase_parameter(server) -> None:
    report = upload(server["base"], TELEFILM, params={"phase": "forecast"}).json()
    assert report["phase"] == "forecast"
    bad = upload(server["base"], TELEFILM, params={"phase": "demain"})
    assert bad.status_code == 422
    assert bad.json()["error"]["message"].startswith("Paramètre invalide : phase")


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_each_hostile_file_gets_the_validate_verdict(server, corpus, name: str) -> None:
    _build, code = CORPUS[name]
    response = upload(server["base"], corpus[name])
    report = response.json()
    assert response.status_code != 500, response.text
    expected = next(validate_paths([str(corpus[name])], BatchOptions(jobs=1)))
    assert report["status"] == expected["status"]
    if code is None:
        assert response.status_code == 200 and report["status"] != "rejected"
    else:
        assert report["status"] == "rejected"
        assert report["rejection"]["code"] == code == expected["rejection"]["code"]
        assert response.status_code == rejection_status(code) in (415, 422)
        assert report["error"]["code"] == code and report["error"]["message"]
        assert str(server["tmpdir"]) not in response.text
    assert_no_leftovers(server["tmpdir"])


def test_oversize_upload_is_413_while_reading(server, tmp_path: Path) -> None:
    big = tmp_path / "gros.xlsx"
    with open(big, "wb") as fh:
        fh.write(TELEFILM.read_bytes())
        fh.write(b"\0" * (2 * 2**20))
    response = upload(server["base"], big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "FILE_TOO_LARGE"
    assert "1 Mo" in response.json()["error"]["message"]

    def chunks():  # no Content-Length: the cap is enforced on the bytes received
        yield (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"g.xlsx\"\r\n"
               b"\r\n")
        for _ in range(40):
            yield b"\0" * 65536
        yield b"\r\n--b--\r\n"

    chunked = httpx.post(f"{server['base']}/api/validate", content=chunks(),
                         headers={"Content-Type": "multipart/form-data; boundary=b"},
                         timeout=CLIENT_TIMEOUT)
    assert chunked.status_code == 413
    # a file part just over the cap inside a body the framing margin lets through
    near = tmp_path / "juste.xlsx"
    near.write_bytes(b"PK" + b"\0" * (2**20 + 10))
    assert upload(server["base"], near).status_code == 413
    assert_no_leftovers(server["tmpdir"])


def test_bad_requests_are_4xx_never_500(server) -> None:
    base = server["base"]
    raw = httpx.post(f"{base}/api/validate", content=TELEFILM.read_bytes(),
                     headers={"Content-Type": "application/octet-stream"})
    assert raw.status_code == 415 and raw.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    no_file = httpx.post(f"{base}/api/validate", data={"autre": "1"}, files={"x": ("a", b"1")})
    assert no_file.status_code == 422 and no_file.json()["error"]["code"] == "MISSING_FILE"
    garbage = httpx.post(f"{base}/api/validate", content=b"--b\r\nnot a header line\r\n\r\n",
                         headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert garbage.status_code in (400, 422), garbage.text
    pdf = httpx.post(f"{base}/api/validate", files={"file": ("rapport.pdf", b"%PDF-1.4\n")})
    assert pdf.status_code == 415 and pdf.json()["rejection"]["code"] == "NOT_A_WORKBOOK"
    assert_no_leftovers(server["tmpdir"])


def test_client_file_name_is_never_a_path(server) -> None:
    # a raw body: the name carries a path, a NUL and a bidi override, unencoded
    name = "../../../../tmp/é\x00vil\u202e.xlsx".encode()
    body = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + name
            + b"\"\r\n\r\n" + TELEFILM.read_bytes() + b"\r\n--b--\r\n")
    response = httpx.post(f"{server['base']}/api/validate", content=body,
                          headers={"Content-Type": "multipart/form-data; boundary=b"},
                          timeout=CLIENT_TIMEOUT)
    assert response.status_code == 200, response.text
    assert response.json()["file"] == "évil.xlsx"
    assert not Path("/tmp/évil.xlsx").exists()
    assert_no_leftovers(server["tmpdir"])


def test_client_gone_mid_upload_leaves_nothing(server) -> None:
    host, port = server["base"].removeprefix("http://").split(":")
    head = (f"POST /api/validate HTTP/1.1\r\nHost: {host}\r\nContent-Length: 500000\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n\r\n").encode()
    part = b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.xlsx\"\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head + part + TELEFILM.read_bytes()[:20000])
        time.sleep(0.3)
    deadline = time.monotonic() + 20
    while list(server["tmpdir"].iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert_no_leftovers(server["tmpdir"])
    assert httpx.get(f"{server['base']}/healthz").json()["pending"] == 0


# --------------------------------------------------------------------------- process


def test_process_returns_the_processed_workbook(server) -> None:
    response = upload(server["base"], TELEFILM, "process", name="Les Nuits été.xlsx")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    disposition = response.headers["content-disposition"]
    assert "filename*=UTF-8''Les%20Nuits%20%C3%A9t%C3%A9-calcule.xlsx" in disposition
    assert response.headers["x-carbonclap-status"] == "ok"
    assert float(response.headers["x-carbonclap-total-final-kgco2e"]) > 0
    with zipfile.ZipFile(io.BytesIO(response.content)) as zf:
        assert "xl/workbook.xml" in zf.namelist()
    assert_no_leftovers(server["tmpdir"])


def test_process_rejected_or_foreign_file_answers_the_report(server, corpus) -> None:
    bomb = upload(server["base"], corpus["zip_bomb.xlsx"], "process")
    assert bomb.status_code == 422 and bomb.json()["rejection"]["code"] == "ZIP_BOMB"
    foreign = upload(server["base"], corpus["macro.xlsm"], "process")
    assert foreign.status_code == 422
    assert foreign.json()["error"]["code"] == "NOT_CARBONCLAP_WORKBOOK"
    assert_no_leftovers(server["tmpdir"])


# --------------------------------------------------------------------------- load


def test_concurrent_uploads_with_a_hostile_file_in_the_middle(server, corpus) -> None:
    jobs = [("telefilm", TELEFILM)] * 10 + [("bomb", corpus["zip_bomb.xlsx"])] + [
        ("faulty", corpus["faulty.xlsx"])] * 5 + [("far", corpus["far_cell.xlsx"])]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda job: (job[0], upload(server["base"], job[1])), jobs))
    for kind, response in results:
        report = response.json()
        if kind == "telefilm":
            assert response.status_code == 200 and report["status"] == "ok"
        elif kind == "faulty":
            assert response.status_code == 200 and report["status"] == "errors"
        else:
            assert response.status_code == 422 and report["status"] == "rejected"
    assert httpx.get(f"{server['base']}/healthz").json()["pending"] == 0
    assert_no_leftovers(server["tmpdir"])


# --------------------------------------------------------------------------- access


def test_token_required_when_configured(token_server) -> None:
    base = token_server
    for bad in ({}, {"Authorization": "Bearer faux"}, {"Authorization": f"Basic {TOKEN}"}):
        response = upload(base, TELEFILM, headers=bad)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "Jeton" in response.json()["error"]["message"]
        assert httpx.get(f"{base}/api/activities", headers=bad).status_code == 401
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert upload(base, TELEFILM, headers=good).json()["status"] == "ok"
    assert httpx.get(f"{base}/api/activities", headers=good).status_code == 200
    # the page and the health check stay open; the page asks for the token
    assert httpx.get(f"{base}/healthz").status_code == 200
    page = httpx.get(f"{base}/").text
    assert '"tokenRequired": true' in page and '<p class="token">' in page


def test_no_token_when_not_configured(server) -> None:
    assert upload(server["base"], TELEFILM, headers={"Authorization": "Bearer x"}
                  ).status_code == 200
    assert '"tokenRequired": false' in httpx.get(f"{server['base']}/").text


# --------------------------------------------------------------------------- catalogue


def test_activities_and_factors(server) -> None:
    base = server["base"]
    acts = httpx.get(f"{base}/api/activities", params={"search": "train"}).json()
    assert acts["count"] >= 1 and all("train" in json.dumps(a).lower()
                                      for a in acts["activities"])
    assert acts["attribution"]
    regie = httpx.get(f"{base}/api/activities", params={"poste": "regie"}).json()
    assert regie["count"] and all("regie" in a["postes"] for a in regie["activities"])
    factors = httpx.get(f"{base}/api/factors", params={"search": "gazole non routier",
                                                       "limit": 5}, timeout=60).json()
    assert factors["count"] >= 1 and len(factors["factors"]) <= 5
    assert {"id", "value", "unit", "source_dataset"} <= factors["factors"][0].keys()
    too_many = httpx.get(f"{base}/api/factors", params={"limit": 100000})
    assert too_many.status_code == 422


# --------------------------------------------------------------------------- storage


def test_storage_keeps_accepted_submissions_and_consolidates(server, corpus) -> None:
    base, storage = server["base"], server["storage"]
    before = {p.name for p in storage.iterdir()}
    kept = upload(base, TELEFILM).json()
    assert kept["submission"]["id"]
    upload(base, corpus["entity_bomb.xlsx"])  # rejected: never kept
    new = [p for p in storage.iterdir() if p.name not in before]
    assert [p.name for p in new] == [kept["submission"]["id"]]
    assert sorted(f.name for f in new[0].iterdir()) == ["classeur.xlsx", "report.json"]
    response = httpx.get(f"{base}/api/consolidate")  # French Excel's format by default
    assert response.status_code == 200 and response.headers["content-type"].startswith(
        "text/csv")
    assert response.content.startswith(b"\xef\xbb\xbfsubmission;title;")
    french = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")),
                                 delimiter=";"))
    assert {r["budget_keur"] for r in french
            if r["title"] == "Les Nuits de Marseille (téléfilm)"} == {"2900"}
    response = httpx.get(f"{base}/api/consolidate", params={"format": "plain"})
    rows = list(csv.DictReader(io.StringIO(response.text)))
    mine = [r for r in rows if r["title"] == "Les Nuits de Marseille (téléfilm)"]
    assert len(mine) % 16 == 0 and mine  # 8 postes × 2 phases per submission
    assert {r["phase"] for r in mine} == {"forecast", "final"}
    assert all(r["budget_keur"] == "2900.0" for r in mine)


def test_consolidate_without_storage_is_404(token_server) -> None:
    response = httpx.get(f"{token_server}/api/consolidate",
                         headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "NO_STORAGE"


# --------------------------------------------------------------------------- CLI


def test_cli_import_does_not_import_the_web_stack() -> None:
    code = ("import sys, carbonclap_xl.cli as c; c.build_parser(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('fastapi', 'uvicorn', 'starlette', 'python_multipart')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_serve_without_the_extra_says_what_to_install() -> None:
    code = ("import sys; sys.modules['fastapi'] = None; from carbonclap_xl.cli import main; "
            "sys.exit(main(['serve']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip() == ("erreur : le service web demande des paquets en plus : "
                                  "pip install 'carbonclap_xl[service]'")


# --------------------------------------------------------------------------- helpers


def test_display_and_processed_names() -> None:
    from carbonclap_xl.service.uploads import content_disposition, display_name, processed_name

    assert display_name("C:\\Users\\moi\\Mon film.xlsx") == "Mon film.xlsx"
    assert display_name("../../etc/passwd") == "passwd"
    assert display_name("..") == display_name("") == display_name(None) == "classeur.xlsx"
    assert display_name("a\x00b\u202ec.xlsx") == "abc.xlsx"
    long = display_name("x" * 300 + ".xlsx")
    assert len(long) <= 120 and long.endswith(".xlsx")
    assert processed_name("Mon film.xlsx", ".xlsx") == "Mon film-calcule.xlsx"
    assert processed_name("Budget.XLSM", ".xlsm") == "Budget-calcule.xlsm"
    assert processed_name("sans extension", ".xlsx") == "sans extension-calcule.xlsx"
    header = content_disposition('Été "2026"; x.xlsx')
    assert header.startswith('attachment; filename="Ete _2026__ x.xlsx"; filename*=UTF-8\'\'')
    assert "%C3%89t%C3%A9%20%222026%22%3B%20x.xlsx" in header


def test_token_from_file_or_environment(tmp_path: Path) -> None:
    from carbonclap_xl.core.errors import InputFileError
    from carbonclap_xl.service.config import read_token

    token_file = tmp_path / "jeton"
    token_file.write_text("  abc123\n", encoding="utf-8")
    assert read_token(str(token_file), {"CARBONCLAP_XL_TOKEN": "env"}) == "abc123"
    assert read_token(None, {"CARBONCLAP_XL_TOKEN": " env "}) == "env"
    assert read_token(None, {}) is None
    assert read_token(None, {"CARBONCLAP_XL_TOKEN": "  "}) is None
    token_file.write_text("\n", encoding="utf-8")
    with pytest.raises(InputFileError, match="fichier de jeton vide"):
        read_token(str(token_file), {})
    with pytest.raises(InputFileError, match="introuvable"):
        read_token(str(tmp_path / "absent"), {})
