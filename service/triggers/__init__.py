"""What queues jobs besides the web: the native webhook's payloads (`payloads.py`), backfill and
resync (`backfill.py`), the reconciliation sweep (`reconcile.py`); and `runtime.py`, one running
process: the engine with these. Imports the engine and below."""
