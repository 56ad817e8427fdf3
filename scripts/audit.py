"""Audit the locked dependencies for known vulnerabilities (``make audit``, part of
``make test``).

1. ``pip-audit`` checks every pin of the lock file (``--no-deps``: the lock is the whole
   environment) against PyPI's vulnerability records of that exact release.
2. A pin pip-audit could not look up (the per-release record is not served by the
   registry in reach) is looked up in the project's own PyPI record, whose
   ``vulnerabilities`` are those of its newest release: when the pin IS the newest
   release, that is the same answer.
3. Any known vulnerability fails the audit. A pin that could be looked up neither way is
   said loudly, naming whether Accord ships it (its runtime dependencies and theirs, read
   from the installed metadata): such a pin is an older release than the newest, so
   ``make lock`` moves it to one that can be checked and carries the fixes. It does not
   fail the audit by itself: a new upstream release would otherwise turn every build red
   until the lock is refreshed, for no change of ours. Under CI (``CI`` set) the audit
   fails when nothing could be audited at all (the service out of reach): an audit that
   could not run has not passed.

Exit status: 0 clean, 1 vulnerable or (under CI) not audited, 2 usage.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

PYPI = "https://pypi.org/pypi/{name}/json"


def pins(lock: Path) -> dict[str, str]:
    """``name==version`` lines of the lock file (comments and blanks skipped)."""
    out = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            out[_normal(name)] = version.strip()
    return out


def _normal(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def pip_audit(lock: Path) -> dict[str, dict[str, object]]:
    """pip-audit's verdict per package: ``{"vulns": [...]}`` or ``{"skip": reason}``."""
    done = subprocess.run(
        [sys.executable, "-m", "pip_audit", "-r", str(lock), "--no-deps", "--disable-pip",
         "--progress-spinner", "off", "--format", "json"],
        capture_output=True, text=True, check=False)
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        print(f"audit: pip-audit gave no report (exit {done.returncode}):\n"
              f"{done.stderr.strip()}", file=sys.stderr)
        return {}
    verdicts: dict[str, dict[str, object]] = {}
    for dep in report.get("dependencies", []):
        key = _normal(dep["name"])
        verdicts[key] = ({"skip": dep["skip_reason"]} if "skip_reason" in dep
                         else {"vulns": [v["id"] for v in dep.get("vulns", [])]})
    return verdicts


def shipped(root: str = "accord") -> set[str]:
    """The installed distributions ``root`` needs at run time (no extras), transitively."""
    seen: set[tuple[str, str]] = set()
    todo: list[tuple[str, str]] = [(root, "")]
    while todo:
        name, extra = todo.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for spec in requires:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": extra}):
                dep = _normal(req.name)
                todo += [(dep, "")] + [(dep, e) for e in sorted(req.extras)]
    return {name for name, _ in seen} - {_normal(root)}


def newest_release_vulns(name: str, version: str) -> list[str] | None:
    """The known vulnerabilities of ``name`` ``version`` when it is the newest release
    (PyPI's project record); None when that record cannot tell."""
    try:
        with urllib.request.urlopen(PYPI.format(name=name), timeout=30) as answer:
            record = json.load(answer)
    except (urllib.error.URLError, TimeoutError, json.JSONDecodeError, OSError):
        return None
    if record.get("info", {}).get("version") != version:
        return None
    return [v.get("id", "?") for v in record.get("vulnerabilities", [])
            if not v.get("withdrawn")]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: audit.py LOCKFILE", file=sys.stderr)
        return 2
    lock = Path(argv[0])
    locked = pins(lock)
    verdicts = pip_audit(lock)
    vulnerable: dict[str, list[str]] = {}
    unaudited: list[str] = []
    by_fallback = 0
    missing = [n for n in locked if verdicts.get(n, {}).get("vulns") is None]
    with ThreadPoolExecutor(8) as pool:  # one PyPI record each: in parallel
        fallback = dict(zip(missing, pool.map(lambda n: newest_release_vulns(n, locked[n]),
                                              missing), strict=True))
    for name, version in sorted(locked.items()):
        found = verdicts.get(name, {}).get("vulns")
        if found is None:
            found = fallback[name]
            by_fallback += found is not None
        if found is None:
            unaudited.append(f"{name}=={version}")
        elif found:
            vulnerable[f"{name}=={version}"] = list(found)  # type: ignore[call-overload]
    for pin, ids in vulnerable.items():
        print(f"audit: VULNERABLE {pin}: {', '.join(ids)}", file=sys.stderr)
    if unaudited:
        print(f"audit: NOT AUDITED ({len(unaudited)} of {len(locked)}): the vulnerability "
              f"records could not be read for: {', '.join(unaudited)}", file=sys.stderr)
    audited = len(locked) - len(unaudited)
    print(f"audit: {audited} of {len(locked)} locked packages audited "
          f"({by_fallback} through their newest-release record), "
          f"{len(vulnerable)} with known vulnerabilities")
    if vulnerable:
        return 1
    runtime = shipped()
    blind = [pin for pin in unaudited if pin.split("==")[0] in runtime]
    if blind:
        print(f"audit: WARNING: shipped packages not audited (run make lock): "
              f"{', '.join(blind)}", file=sys.stderr)
    if os.environ.get("CI") and audited == 0:
        print("audit: failing: nothing could be audited (the vulnerability service is out "
              "of reach); under CI an audit that could not run has not passed",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
