"""The wheel is the product: it holds the templates, static files and migrations as
package data, and no tests. Installed into a fresh virtual environment outside the source
tree it gives a working ``accord``: ``tests/ops/test_operations_doc.py`` does that, as
docs/operations.md says (``--version``, ``accord serve`` answering ``/api/health``, its
console pages and files, MLLP messages answered AA)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from accord import __version__
from accord.store.schema.migrations import revisions

from .conftest import wheel_of


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
