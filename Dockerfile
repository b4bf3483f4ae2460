# contact-sync as the README installs it (`pip install .`), on Python 3.12, run as a user of its own.
# PostgreSQL comes from DATABASE_URL: docker-compose.yml starts one beside it.
FROM python:3.12-slim

RUN useradd --create-home --uid 10001 contact-sync
WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY migrations ./migrations
RUN pip install --no-cache-dir . && rm -rf /app/service /app/migrations

USER contact-sync
# Without DATABASE_URL, the embedded database goes in the user's own folder.
ENV PORT=8000 LOG_FORMAT=json DATA_DIR=/home/contact-sync/.data
EXPOSE 8000
# SIGTERM stops a process within 25 s (docs/how-to/deploy.md): compose's 30 s grace is enough.
CMD ["contact-sync", "serve"]
