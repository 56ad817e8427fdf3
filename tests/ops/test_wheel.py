"""The wheel is the product: installed into a fresh virtual environment, outside the
source tree, it gives a working ``accord`` (templates, static files, migrations as
package data): ``--version``, and ``accord serve`` answering ``/api/health``, serving its
console and answering an MLLP message AA."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import httpx

from accord import __version__
from accord.store.schema.migrations import head_revision, revisions
from ops_support import ack_code, order, send, serving, write_config

from .conftest import fresh_venv, wheel_of


def test_the_wheel_holds_the_package_data(dist: Path) -> None:
    wheel = wheel_of(dist)
    assert wheel.name == f"accord-{__version__}-py3-none-any.whl"
    assert (dist / f"accord-{__version__}.tar.gz").is_file()
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("accord/web/templates/base.html", "accord/web/templates/_maintenance.html",
                   "accord/web/static/htmx.min.js", "accord/web/static/swagger/swagger-ui.css",
                   "accord/store/schema/migrations/env.py",
                   "accord/store/schema/migrations/script.py.mako", "accord/py.typed",
                   *(f"accord/store/schema/migrations/versions/{rev}.py"
                     for rev in revisions())):
        assert needed in names, needed
    assert not any(n.startswith(("tests/", "bench/")) for n in names)


def test_installed_in_a_fresh_venv_it_serves(dist: Path, tmp_path: Path) -> None:
    bin_dir = fresh_venv(tmp_path / "venv")
    installed = subprocess.run([str(bin_dir / "pip"), "install", "--quiet",
                                str(wheel_of(dist))], capture_output=True, text=True,
                               timeout=900, check=False, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr[-3000:]
    accord = bin_dir / "accord"
    where = subprocess.run([str(bin_dir / "python"), "-c", "import accord; print(accord.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path)
    assert where.stdout.startswith(str(tmp_path / "venv")), where.stdout  # not the source
    version = subprocess.run([str(accord), "--version"], capture_output=True, text=True,
                             check=True, cwd=tmp_path)
    assert version.stdout.strip() == f"accord {__version__} (schema {head_revision()})"
    config = write_config(tmp_path / "accord.yaml")
    with serving(["--config", str(config), "--data", str(tmp_path / "data")],
                 tmp_path / "serve.log", binary=accord, cwd=tmp_path) as eng:
        assert ack_code(send(eng.mllp_port, order(1))) == "AA"
        assert httpx.get(f"{eng.url}/static/htmx.min.js").status_code == 200
        login = httpx.get(f"{eng.url}/login")
        assert login.status_code == 200 and "csrf_token" in login.text  # a template
        assert eng.stop() == 0
