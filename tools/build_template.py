"""Write the committed template and the bundled examples (``make template``).

    python -m tools.build_template

Build-time only: the installed package never writes into the source tree.
"""

from __future__ import annotations

from pathlib import Path

from carbonclap_xl.core.factors import FactorEdition
from carbonclap_xl.xlsx.template import build_template, fill, save

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = REPO_ROOT / "workbook" / "CarbonClap.xlsx"
EXAMPLES_DIR = REPO_ROOT / "workbook" / "examples"


def build_examples(edition: FactorEdition | None = None) -> list[Path]:
    """workbook/examples/<name>.xlsx from <name>.csv and <name>.production.yaml, read as
    ``carbonclap-xl new --from <name>.csv --production <name>.production.yaml`` reads them."""
    from carbonclap_xl.intake.csv_lines import read_lines_csv
    from carbonclap_xl.intake.production import workbook_production

    out = []
    for csv_path in sorted(EXAMPLES_DIR.glob("*.csv")):
        meta_path = csv_path.with_suffix(".production.yaml")
        lines = read_lines_csv(csv_path)
        production = workbook_production(lines.header,
                                         meta_path if meta_path.exists() else None)
        wb = build_template(edition)
        fill(wb, lines.lines, production, edition)
        target = csv_path.with_suffix(".xlsx")
        save(wb, target)
        out.append(target)
    return out


def main() -> int:
    save(build_template(), TEMPLATE_PATH)
    print(f"écrit : {TEMPLATE_PATH}")
    for path in build_examples():
        print(f"écrit : {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
