"""What the benches share: run the package as an installed copy runs it.

pip byte-compiles an installed package; a shell with ``PYTHONDONTWRITEBYTECODE=1`` (as some
CI and agent shells set) would otherwise make every timed process compile ours from source
while the reference libraries load their compiled modules.
"""

from __future__ import annotations

import compileall
import os
from pathlib import Path

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def compile_package() -> None:
    """Byte-compile carbonclap_xl where it is imported from (as pip does on install)."""
    import carbonclap_xl

    compileall.compile_dir(Path(carbonclap_xl.__file__).parent, quiet=1)
