"""Write the committed report example from the TV-film example workbook.

    python -m tools.report_example

docs/report-example.pdf (the report) and docs/report-example-page1.png (its first page, as
poppler's ``pdftoppm`` draws it, reduced to a palette to stay small). Build-time only.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from carbonclap_xl.report.writer import write_report

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKBOOK = REPO_ROOT / "workbook" / "examples" / "telefilm.xlsx"
PDF = REPO_ROOT / "docs" / "report-example.pdf"
PNG = REPO_ROOT / "docs" / "report-example-page1.png"


def main() -> None:
    from PIL import Image

    written = write_report(WORKBOOK, PDF, force=True)
    pdftoppm = shutil.which("pdftoppm")
    if not pdftoppm:
        raise SystemExit("pdftoppm introuvable : apt-get install poppler-utils")
    with tempfile.TemporaryDirectory() as tmp:
        stem = Path(tmp) / "page1"
        subprocess.run([pdftoppm, "-r", "90", "-png", "-singlefile", "-f", "1", "-l", "1",
                        str(PDF), str(stem)], check=True)
        with Image.open(stem.with_suffix(".png")) as img:
            img.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(
                PNG, optimize=True)
    print(f"{written.path.relative_to(REPO_ROOT)} ({PDF.stat().st_size // 1024} Ko), "
          f"{PNG.relative_to(REPO_ROOT)} ({PNG.stat().st_size // 1024} Ko)")


if __name__ == "__main__":
    main()
