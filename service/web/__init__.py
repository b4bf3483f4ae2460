"""The Starlette app (`app.py`): the Airtable automation's webhook and the native webhook's pings
(`webhooks.py`), the manual API (`api.py`), and what guards them: auth, validation, limits,
errors, OpenAPI, the /metrics page. Imports the triggers, the engine and below."""
