"""contact-sync, in wings read in call order (each imports only the wings below it):

    commands/   the `contact-sync` command line, the demo, doctor, adopt and forget
    web/        the Starlette app: webhooks, the manual API, auth, limits, errors, OpenAPI
    triggers/   what queues jobs besides the web (native webhook payloads, backfill,
                reconciliation), and the runtime that runs them with the engine
    engine/     the job queue, the worker, one job's sync, the pusher (the outbox's sender to
                Airtable, which ends jobs), the wake-ups, retention, stats
    attestr/    the Attestr client and the gate before every paid call
    airtable/   the Airtable client, the shared rate limit, the native webhook's upkeep
    people/     normalising contacts, de-duplicating people, companies
    config, database, queries, migrations, logs, metrics, identifiers, wakeup: the ground floor

`standins/` are Attestr and Airtable as their documentation describes them, for the demo, the
tests and the benchmarks; they import nothing of the service.
"""
