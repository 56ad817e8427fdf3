"""What a reload may change (``accord.reload``): the parts are built and checked before
anything switches, errors name the key and its line, keys read at start only stay."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from accord.clock import ControlIds
from accord.config import load_config
from accord.errors import ConfigError
from accord.reload import RELOADED, RESTART_ONLY, build_parts, differing, running

NOW = datetime(2026, 3, 2, tzinfo=UTC)


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "accord.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "said"), [
    ("dialects:\n  ris:\n    match: {application: RIS}\n    unknown_order: sometimes\n",
     "dialects.ris.unknown_order: unknown_order must be one of keep, reject, not "
     "'sometimes' (accord.yaml line 4)"),
    ("dialects:\n  ris:\n    colour: blue\n",
     "dialects.ris.colour: unknown key(s) colour (accord.yaml line 3)"),
    ("workflow:\n  catalog:\n    station_rules:\n      - {name: a}\n      - {stations: 1}\n",
     "workflow.catalog.station_rules[0]: bad station rule"),
    ("alerts:\n  rules:\n    - {kind: queue_depth}\n    - {kind: x, size: 1}\n",
     "alerts.rules[2]: unknown keys ['size'] (accord.yaml line 4)"),
    ("destinations:\n  - {name: a, host: h, port: 1, send: [adt], dialect: nope}\n",
     "names dialect 'nope', which the dialects section does not define (accord.yaml line 1)"),
])
def test_errors_name_the_key_and_line(tmp_path: Path, text: str, said: str) -> None:
    path = _file(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        build_parts(load_config(path), path, ControlIds(), NOW)
    assert said in str(err.value)


def test_running_keeps_what_is_read_at_start(tmp_path: Path) -> None:
    old = load_config(None, {"mllp.port": 2575, "node_id": "a"})
    new = load_config(_file(tmp_path, "node_id: b\nmllp: {port: 3000, limits: "
                            "{max_connections: 5}}\nshutdown_grace: 5\nhttp: {port: 1}\n"))
    assert differing(old, new, RESTART_ONLY) == ("node_id", "mllp.port", "http")
    assert differing(old, new, RELOADED) == ("mllp.limits", "shutdown_grace")
    now = running(old, new)
    assert (now.node_id, now.mllp.port, now.http.port) == ("a", 2575, 8080)
    assert now.mllp.limits.max_connections == 5 and now.shutdown_grace == 5
    parts = build_parts(now, None, ControlIds(), NOW)
    assert parts.limits.max_connections == 5 and parts.limits.shutdown_grace == 5
