"""Root of the test tree. Being a conftest in a folder without ``__init__.py``, pytest
puts this folder on the import path, so helpers shared across test folders
(``pg_support``) import by name from any of them, however the run is started."""
