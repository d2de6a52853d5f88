"""Add CarbonClap.oxt to a LibreOffice user profile through the ExtensionManager.

    python3 add_extension.py --oxt FILE.oxt --profile DIR [--soffice PATH] [--timeout S]

Run by a Python that has `uno`, as root (where `unopkg add` refuses user installs): starts
a headless soffice on the profile, calls addExtension(url, (), "user", …) with an
interaction handler that approves (licence, replacing an installed copy), checks that the
extension is deployed and registered, and stops soffice. Prints one JSON line:
{"ok": true, "identifier", "version", "seconds", "start_seconds"} or {"ok": false, "error"}.
Standard library + uno; started by `carbonclap-xl libreoffice install`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import uno
import unohelper
from com.sun.star.task import XInteractionHandler
from com.sun.star.ucb import XCommandEnvironment, XProgressHandler
from session import Office, soffice_env

IDENTIFIER = "org.carbonclap.xl"


def _supports(obj, name: str) -> bool:
    try:
        return any(t.typeName == name for t in obj.getTypes())
    except Exception:
        try:
            return obj.queryInterface(uno.getTypeByName(name)) is not None
        except Exception:
            return False


class Approve(unohelper.Base, XInteractionHandler):
    """Approves every request (licence, "replace the installed version?"). The request
    itself is not read: pyuno cannot always convert it (SystemError)."""

    def handle(self, request):
        for cont in request.getContinuations():
            if _supports(cont, "com.sun.star.task.XInteractionApprove"):
                cont.select()
                return


class Progress(unohelper.Base, XProgressHandler):
    def push(self, status):
        pass

    def update(self, status):
        pass

    def pop(self):
        pass


class CmdEnv(unohelper.Base, XCommandEnvironment):
    def getInteractionHandler(self):
        return Approve()

    def getProgressHandler(self):
        return Progress()


def install(oxt: Path, profile: Path, timeout: float) -> dict:
    office = Office(profile, env=soffice_env())
    try:
        try:
            started = office.start(connect_timeout=min(timeout, 120))
        except RuntimeError as exc:
            if "exited early with 0" in str(exc):
                return {"ok": False, "error": "LibreOffice est déjà ouvert sur ce profil : "
                                              "fermez-le puis recommencez"}
            raise
        em = office.ctx.getValueByName("/singletons/com.sun.star.deployment.ExtensionManager")
        env = CmdEnv()
        t0 = time.perf_counter()
        with office.guard(timeout, "addExtension"):
            pkg = em.addExtension(oxt.resolve().as_uri(), (), "user",
                                  em.createAbortChannel(), env)
        seconds = time.perf_counter() - t0
        with office.guard(60, "getDeployedExtensions"):
            deployed = em.getDeployedExtensions("user", em.createAbortChannel(), env)
            ids = [p.getIdentifier().Value for p in deployed]
            registered = pkg.isRegistered(em.createAbortChannel(), env)
        if IDENTIFIER not in ids or not (registered.IsPresent and registered.Value.Value):
            return {"ok": False, "error": f"extension absente après l'ajout ({ids})"}
        return {"ok": True, "identifier": IDENTIFIER, "version": pkg.getVersion(),
                "seconds": round(seconds, 3), "start_seconds": round(started, 3)}
    finally:
        office.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--oxt", required=True, type=Path)
    parser.add_argument("--profile", required=True, type=Path)
    parser.add_argument("--soffice")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    if args.soffice:
        os.environ["CARBONCLAP_XL_SOFFICE"] = args.soffice
    try:
        answer = install(args.oxt, args.profile, args.timeout)
    except Exception as exc:
        traceback.print_exc()
        answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(answer, ensure_ascii=False))
    return 0 if answer.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
