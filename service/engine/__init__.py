"""The job engine: the queue (`jobs.py`), the worker claiming jobs (`worker.py`), one job's work
(`sync.py`, with `company_record.py` and `answers.py`), the outbox's sender to Airtable that ends
jobs (`pusher.py`), wake-ups between processes (`listener.py`), retention and stats. Imports
Attestr, Airtable, people and below."""
