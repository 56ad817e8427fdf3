"""``accord user add NAME --role ROLE`` and ``accord user list`` (docs/interface.md).

The password is read from standard input (the first line; from a terminal it is asked
for twice without echo), never from the command line, where other users could see it in
the process list. Errors are one line on standard error, exit 2.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated

import typer

from accord.cli import app, fail
from accord.clock import SystemClock
from accord.store import open_store, sqlite_url
from accord.store.accounts import Accounts, UserExistsError
from accord.store.gateway.store import SqlStore
from accord.web.auth import Auth, AuthError
from accord.web.permissions import ROLES

user_app = typer.Typer(help="Console users (accounts for the web console and API).",
                       no_args_is_help=True)
app.add_typer(user_app, name="user")

DataOpt = Annotated[Path, typer.Option("--data", help="Data directory (SQLite store).")]
DbOpt = Annotated[str | None, typer.Option("--db", help="Store URL (postgresql://…).")]


def _open(data: Path, db: str | None) -> SqlStore:
    return open_store(db or sqlite_url(data))


def _password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise fail("the two passwords differ")
        return first
    line = sys.stdin.readline()
    if not line:
        raise fail("no password on standard input")
    return line.rstrip("\r\n")


@user_app.command("add")
def add(name: Annotated[str, typer.Argument(help="User name (a-z 0-9 . _ - @).")],
        role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}.")],
        data: DataOpt = Path("accord-data"), db: DbOpt = None) -> None:
    """Create a console user in the store; the password is read from standard input."""
    if role not in ROLES:
        raise fail(f"unknown role {role!r}; one of: {', '.join(ROLES)}")
    password = _password()
    store = _open(data, db)
    try:
        user = Auth(Accounts.over(store.database), SystemClock()).add_user(name, role, password)
    except UserExistsError:
        raise fail(f"user {name!r} exists already") from None
    except AuthError as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()
    typer.echo(f"user {user.name} ({user.role}) created")


@user_app.command("list")
def list_users(data: DataOpt = Path("accord-data"), db: DbOpt = None) -> None:
    """List console users: name, role, and whether disabled."""
    store = _open(data, db)
    try:
        users = Accounts.over(store.database).users
        cursor: str | None = None
        while True:
            page = users.page(cursor, 1000)
            for u in page.items:
                typer.echo(f"{u.name}\t{u.role}{chr(9) + 'disabled' if u.disabled else ''}")
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    finally:
        store.close()
