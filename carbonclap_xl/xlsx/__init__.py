"""Surgical edits of .xlsx/.xlsm packages: write owned cells, leave every other byte alone.

``patch_workbook`` writes values into named sheets; ``sheet_parts`` maps sheet names to the
zip members that hold them. Neither imports openpyxl at import time.
"""

from carbonclap_xl.xlsx.package import sheet_parts
from carbonclap_xl.xlsx.patch import CellValue, patch_workbook

__all__ = ["CellValue", "patch_workbook", "sheet_parts"]
