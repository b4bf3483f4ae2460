"""Airtable: the client (`client.py`, errors in `errors.py`, its HTTP session in `transport.py`),
the rate limit every process shares (`ratelimit.py`), the native webhook's upkeep (`webhooks.py`),
the write check. Never imports the Attestr wing; the engine's pusher is what writes rows through
it."""
