"""People: contacts normalised (`normalize.py`, `names.py`), matched to the people already known
(`matching.py`) and stored, de-duplicated, with their companies (`dedup.py`, `companies.py`);
the older tool's table imported (`importer.py`). Imports only the ground floor."""
