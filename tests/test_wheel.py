"""The built wheel ships the factor files and the template, and works from them alone."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_ships_data_and_runs_from_it(tmp_path: Path) -> None:
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("carbonclap_xl-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path / "site")
    for member in (
        "carbonclap_xl/_data/factors/base-empreinte/23.6.json",
        "carbonclap_xl/_data/factors/base-empreinte/23.6.yaml",
        "carbonclap_xl/_data/factors/catalogue.resolved.json",
        "carbonclap_xl/_data/factors/README.md",
        "carbonclap_xl/_data/CarbonClap.xlsx",
        "carbonclap_xl/service/static/index.html",  # the service's page, served locally
        "carbonclap_xl/service/static/app.js",
        "carbonclap_xl/service/static/app.css",
        "carbonclap_xl/libreoffice/extension/carbonclap_handler.py",
        "carbonclap_xl/libreoffice/office/add_extension.py",
        "carbonclap_xl/libreoffice/office/session.py",
        "carbonclap_xl/intake/devis_mapping.yaml",
        "carbonclap_xl/_data/CarbonClap.xlam",
        "carbonclap_xl/excel/icons/cc_recalculer.png",
    ):
        assert member in names
    code = (
        "import carbonclap_xl, carbonclap_xl.core.factors as f;"
        "e = f.load_edition();"
        "print(carbonclap_xl.__file__); print(f.data_dir());"
        "print(e.factor('BE:43642').value, len(e.activities));"
        "from carbonclap_xl.libreoffice.build import oxt_files;"
        "assert 'carbonclap_handler.py' in oxt_files()"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            f"import sys; sys.path.insert(0, {str(tmp_path / 'site')!r}); {code}",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    module, data, values = out.stdout.strip().splitlines()
    assert module.startswith(str(tmp_path / "site"))
    assert data.startswith(str(tmp_path / "site"))
    value, count = values.split()
    assert float(value) == 0.0519 and int(count) > 150
