"""The LibreOffice Calc front door: an extension (``CarbonClap.oxt``) whose commands
Recalculer, Vérifier, Rapport and Facteurs run the same pipeline as ``process`` on the open
document, through the workbook port's JSON exchange.

``build`` makes the ``.oxt`` from the package data in ``extension/`` (the UNO component,
standard library + uno only, never imported by this package), ``check`` verifies every menu
and toolbar link, ``install`` adds it to the user's LibreOffice and records which
``carbonclap-xl`` it must call, ``exchange`` answers the extension's requests. ``office/``
holds the scripts that need a Python with ``uno`` (the ExtensionManager route for root).
"""
