"""Tests for accord.config: the documented defaults (docs/interface.md), key path + line
in errors, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from accord.config import Config, load_config
from accord.errors import ConfigError

DOCUMENTED_FORM = """\
destinations:
  - name: ris            # gets procedure status updates
    host: 127.0.0.1
    port: 2576
    send: [status]
  - name: pacs
    host: 127.0.0.1
    port: 2577
    send: [adt, orders, reports]
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "accord.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_are_the_documented_ones() -> None:
    cfg = load_config(None)
    assert (cfg.mllp.host, cfg.mllp.port) == ("127.0.0.1", 2575)
    assert (cfg.dicom.ae_title, cfg.dicom.port) == ("ACCORD", 11112)
    assert cfg.http.port == 8080
    assert cfg.mllp.limits.max_message_bytes == 10 * 1024 * 1024
    assert cfg.mllp.limits.frame_deadline == 30
    assert cfg.mllp.limits.idle_timeout == 300
    assert (cfg.mllp.limits.max_connections, cfg.mllp.limits.max_per_peer) == (100, 20)
    assert cfg.store.data_dir == Path("accord-data")
    assert cfg.store.resolved_url().startswith("sqlite:///")
    assert cfg.destinations == ()


def test_documented_destination_form(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, DOCUMENTED_FORM))
    ris, pacs = cfg.destinations
    assert (ris.name, ris.port, ris.send) == ("ris", 2576, ("status",))
    assert pacs.send == ("adt", "orders", "reports")
    assert pacs.retries == 3 and not pacs.per_patient and not pacs.rotate
    assert pacs.backoff.delay(0) == 1.0 and pacs.backoff.delay(20) == 60.0


def test_bad_port_names_path_and_line(tmp_path: Path) -> None:
    bad = DOCUMENTED_FORM.replace("port: 2577", "port: seven")
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, bad))
    assert str(info.value) == "destinations[1].port: must be an integer (accord.yaml line 8)"


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "mllp:\n  port: 2575\n  prot: 1\n"))
    assert str(info.value) == "mllp.prot: unknown key (accord.yaml line 3)"


def test_bad_category_and_missing_host(tmp_path: Path) -> None:
    text = "destinations:\n  - name: x\n    port: 1\n    send: [adt, images]\n"
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    msg = str(info.value)
    assert "destinations[0].host: is required (accord.yaml line 2)" in msg
    assert "destinations[0].send[1]: must be one of" in msg
    assert "(accord.yaml line 4)" in msg


def test_duplicate_destination_names(tmp_path: Path) -> None:
    text = DOCUMENTED_FORM.replace("name: pacs", "name: ris")
    with pytest.raises(ConfigError, match=r"destinations: .*unique: ris \(accord.yaml line 1\)"):
        load_config(write(tmp_path, text))


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"accord.yaml line 3"):
        load_config(write(tmp_path, "mllp:\n  port: 1\n host: x\n"))


def test_top_level_must_be_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="top level"):
        load_config(write(tmp_path, "- a\n- b\n"))


def test_python_tags_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_config(write(tmp_path, "node_id: !!python/object/apply:os.getcwd []\n"))


def test_overrides_win_and_none_is_ignored(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "mllp:\n  port: 3000\n"),
                      {"mllp.port": 3001, "http.port": None, "store.data_dir": str(tmp_path)})
    assert cfg.mllp.port == 3001 and cfg.http.port == 8080
    assert cfg.store.data_dir == tmp_path
    assert cfg.store.resolved_url() == f"sqlite:///{(tmp_path / 'accord.db').resolve()}"


def test_db_url_wins_over_data_dir() -> None:
    cfg = load_config(None, {"store.url": "postgresql+psycopg://postgres@127.0.0.1/test"})
    assert cfg.store.resolved_url().startswith("postgresql")


def test_config_is_frozen() -> None:
    cfg = Config()
    with pytest.raises(Exception, match="frozen"):
        cfg.node_id = "x"  # type: ignore[misc]


def test_retention_per_table_and_the_audit_floor(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "store:\n  retention: {trace: 400, findings: 90}\n"))
    assert cfg.store.retention.trace == 400 and cfg.store.retention.findings == 90
    assert cfg.store.retention.audit == 3653 and cfg.store.retention.audit_floor == 2190
    assert cfg.store.message_retention is None
    assert load_config(None, {"store.retention_days": 30}).store.message_retention == 30
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "store:\n  retention:\n    audit: 30\n"))
    assert "store.retention: audit: 30 days is shorter than audit_floor (2190 days)" in str(
        err.value) and "line 2" in str(err.value)
    assert load_config(write(tmp_path, "store:\n  retention: {audit: 30, audit_floor: 30}\n")
                       ).store.retention.audit == 30
    with pytest.raises(ConfigError, match=r"retention_days and retention\.messages"):
        load_config(write(tmp_path, "store: {retention_days: 3, retention: {messages: 4}}\n"))


def test_shutdown_grace(tmp_path: Path) -> None:
    assert load_config(None).shutdown_grace == 30
    with pytest.raises(ConfigError, match="shutdown_grace"):
        load_config(write(tmp_path, "shutdown_grace: 0\n"))


def test_a_config_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "accord.yaml"
    path.write_bytes(b'mllp:\n  host: "\xad"\n')
    with pytest.raises(ConfigError, match=r"accord.yaml line 2: not UTF-8 text"):
        load_config(path)


def test_listener_allow_lists_take_cidr_and_ae_titles(tmp_path: Path) -> None:
    path = tmp_path / "accord.yaml"
    path.write_text("mllp:\n  allowed_addresses: [10.0.0.0/8, 192.168.1.20, 'fd00::/8']\n"
                    "  limits: {first_frame_grace: 5, max_junk_bytes: 1024}\n"
                    "dicom:\n  allowed_calling_aes: [CT1]\n  max_per_ae: 2\n")
    config = load_config(path)
    assert config.mllp.allowed_addresses == ("10.0.0.0/8", "192.168.1.20", "fd00::/8")
    assert (config.mllp.limits.first_frame_grace, config.mllp.limits.max_junk_bytes) == (5, 1024)
    assert (config.dicom.allowed_calling_aes, config.dicom.max_per_ae) == (("CT1",), 2)
    path.write_text("mllp:\n  allowed_addresses: [10.0.0.0/33]\n")
    with pytest.raises(ConfigError, match=r"mllp.allowed_addresses: '10.0.0.0/33' is not"):
        load_config(path)
