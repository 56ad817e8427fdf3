"""The examples operators copy (docs/examples/): the systemd units pass
``systemd-analyze verify`` (where systemd is installed) with their hardening in place,
and the Prometheus alert rules only name metrics the engine exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from accord.store import open_store, sqlite_url
from accord.web.metrics import Metrics

from .conftest import ROOT

EXAMPLES = ROOT / "docs" / "examples"
HARDENING = ("NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
             "PrivateTmp=yes", "User=accord", "CapabilityBoundingSet=")


def test_the_service_runs_as_its_own_user_with_hardening() -> None:
    unit = (EXAMPLES / "accord.service").read_text(encoding="utf-8")
    for option in HARDENING:
        assert re.search(rf"^{re.escape(option)}$", unit, re.M), option
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit
    assert "--log-format json" in unit


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    accord = shutil.which("accord") or str(Path(__file__).resolve().parents[2] / ".venv" /
                                           "bin" / "accord")
    for unit in EXAMPLES.glob("accord*.*"):
        if unit.suffix in (".service", ".timer"):  # the program where the unit expects it
            text = unit.read_text(encoding="utf-8").replace("/opt/accord/venv/bin/accord",
                                                            accord)
            (tmp_path / unit.name).write_text(text, encoding="utf-8")
    units = sorted(str(p) for p in tmp_path.iterdir())
    assert len(units) == 3
    done = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_alert_rules_name_metrics_the_engine_exports(tmp_path: Path) -> None:
    rules = yaml.safe_load((EXAMPLES / "prometheus-alerts.yml").read_text(encoding="utf-8"))
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    named = {m for e in exprs for m in re.findall(r"\baccord_[a-z_]+", e)}
    store = open_store(sqlite_url(tmp_path))
    try:
        metrics = Metrics()
        metrics.watch_store(store, ("pacs",))
        metrics.watch_size(lambda: 1)
        exported = {name for family in metrics.registry.collect()
                    for name in _series(family.name, family.type)}
    finally:
        store.close()
    assert named and named <= exported, named - exported


def _series(name: str, kind: str) -> tuple[str, ...]:
    """The series names Prometheus sees for a metric family (text format 0.0.4)."""
    if kind == "counter":
        return (f"{name}_total",)
    if kind == "histogram":
        return (f"{name}_bucket", f"{name}_sum", f"{name}_count")
    return (name,)
