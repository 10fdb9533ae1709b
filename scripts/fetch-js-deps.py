#!/usr/bin/env python3
"""Installs the test-only JS packages that package-lock.json pins into node_modules/, as `npm ci` would,
without needing npm (Debian's nodejs comes without it): each locked tarball is downloaded from the npm
registry, checked against the lock's sha512 integrity, and unpacked. Packages already installed at the
locked version are kept. The page itself has no JS dependencies."""
import base64
import hashlib
import io
import json
import pathlib
import shutil
import sys
import tarfile
import urllib.request

root = pathlib.Path(__file__).resolve().parent.parent
lock = json.loads((root / "package-lock.json").read_text())
for key, entry in lock["packages"].items():
    if not key:
        continue
    target = root / key
    installed = target / "package.json"
    if installed.exists() and json.loads(installed.read_text()).get("version") == entry["version"]:
        continue
    with urllib.request.urlopen(entry["resolved"], timeout=60) as response:
        tarball = response.read()
    algorithm, expected = entry["integrity"].split("-", 1)
    if algorithm != "sha512" or base64.b64encode(hashlib.sha512(tarball).digest()).decode() != expected:
        sys.exit(f"{entry['resolved']}: integrity mismatch with package-lock.json")
    shutil.rmtree(target, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        for member in archive.getmembers():
            name = pathlib.PurePosixPath(member.name)
            if name.parts[0] != "package" or ".." in name.parts or not (member.isfile() or member.isdir()):
                continue
            member.name = str(pathlib.PurePosixPath(*name.parts[1:])) if len(name.parts) > 1 else "."
            # Paths are checked above; the "data" filter (Python >= 3.11.4) also refuses odd modes.
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            archive.extract(member, target, **extra)
    print(f"installed {key.removeprefix('node_modules/')} {entry['version']}")
