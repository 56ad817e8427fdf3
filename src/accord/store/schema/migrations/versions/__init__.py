"""Migration revisions, one module each (``NNNN_area.py``), applied in chain order."""
