"""``accord user add`` / ``accord user list`` as subprocesses on a tmp store: the password
comes from standard input, errors are one line (exit 2), and the user can log in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from accord.clock import SystemClock
from accord.store import open_store, sqlite_url
from accord.store.accounts import Accounts
from accord.web.auth import Auth

ACCORD = Path(sys.executable).parent / "accord"
PASSWORD = "correct horse battery"


def accord(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ACCORD), *args], input=stdin, capture_output=True, text=True,
                          timeout=120, check=False)


def test_add_then_log_in(tmp_path: Path) -> None:
    r = accord("user", "add", "alice", "--role", "operator", "--data", str(tmp_path),
               stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "user alice (operator) created"
    assert PASSWORD not in r.stdout + r.stderr
    store = open_store(sqlite_url(tmp_path))
    try:
        auth = Auth(Accounts.over(store.database), SystemClock(),
                    hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        session = auth.login("alice", PASSWORD, "127.0.0.1")
        assert session.principal.role == "operator"
    finally:
        store.close()
    listed = accord("user", "list", "--data", str(tmp_path))
    assert listed.returncode == 0 and listed.stdout.split() == ["alice", "operator"]


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (("bob", "--role", "root"), PASSWORD, "unknown role 'root'"),
    (("bob", "--role", "viewer"), "short", "at least 12 characters"),
    (("Bob!", "--role", "viewer"), PASSWORD, "user name"),
    (("bob", "--role", "viewer"), "", "no password on standard input"),
])
def test_errors_are_one_line(tmp_path: Path, args: tuple[str, ...], stdin: str,
                             message: str) -> None:
    r = accord("user", "add", *args, "--data", str(tmp_path), stdin=stdin)
    assert r.returncode == 2
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr


def test_a_name_is_taken_once(tmp_path: Path) -> None:
    first = accord("user", "add", "carol", "--role", "admin", "--data", str(tmp_path),
                   stdin=PASSWORD)
    assert first.returncode == 0, first.stderr
    again = accord("user", "add", "carol", "--role", "viewer", "--data", str(tmp_path),
                   stdin=PASSWORD)
    assert again.returncode == 2 and "exists already" in again.stderr
