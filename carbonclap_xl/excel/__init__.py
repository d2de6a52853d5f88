"""The Excel front door: the « Carbon'Clap » ribbon tab and worksheet functions (xlwings).

The only room that imports xlwings, and only when a command runs: the add-in's VBA calls
``carbonclap_xl.excel.on_ribbon('<button id>')`` in a fresh Python for each click (or in
xlwings' warm server on Windows), so importing this package loads nothing heavy.

- ``commands``: the four buttons (``HANDLERS``), each the ``process`` pipeline on the open
  book through ``book`` (the workbook port over xlwings);
- ``udfs``: ``CC_FACTEUR``, ``CC_EMISSIONS``, ``CC_INCERTITUDE``, ``CC_RECHERCHE``;
- ``addin`` / ``check`` / ``install``: build ``CarbonClap.xlam`` from xlwings' own ribbon
  add-in, read it back, install it (``carbonclap-xl addin ...``).
"""

from __future__ import annotations

from carbonclap_xl.excel.commands import HANDLERS, on_ribbon

__all__ = ["HANDLERS", "on_ribbon"]
