"""The web layer: the JSON API (``api.py``, ``api_workflow.py``, ``api_admin.py``, shapes
in ``api_json.py``) and the console (``console/``) in one application (``app.py``), with
what both share: authentication (``auth.py``), permissions, the audit log, the request
dependencies (``deps.py``), merges, metrics and alerts.

Rule: the web layer reads and writes through the ports it is given (``deps.WebDeps``:
the store, its views, its accounts, its code tables); it never imports SQLAlchemy."""
