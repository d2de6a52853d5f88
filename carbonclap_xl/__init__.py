"""carbonclap_xl: the carbon footprint of a film or TV production, computed in its budget workbook.

Importing the package is cheap: no pandas, no file I/O. Public entry points live in their
modules (``carbonclap_xl.core.engine``, ``carbonclap_xl.core.factors``, ``carbonclap_xl.cli``).
"""

__version__ = "0.1.0"
