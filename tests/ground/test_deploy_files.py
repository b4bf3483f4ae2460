"""The Dockerfile and docker-compose.yml stay true to the service: the install the README gives, a
user of its own, the Procfile's commands, settings the service reads and accepts, and a
DATABASE_URL that reaches the compose file's own PostgreSQL. (Docker itself is not run here.)"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from service.config import load_settings
from tests.test_docs import settings_variables, wrong_commands

ROOT = Path(__file__).parent.parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
OURS = ("migrate", "web", "worker")  # the compose services that run contact-sync


def test_the_compose_file_runs_the_procfiles_processes() -> None:
    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)
    commands = {name: " ".join(COMPOSE["services"][name]["command"]) for name in OURS}
    assert commands == {"migrate": procfile["release"], "web": procfile["web"], "worker": procfile["worker"]}
    assert all(wrong_commands(command) == [] for command in commands.values())
    # The web process leaves the jobs to the worker; the worker and web start after migrate.
    assert COMPOSE["services"]["web"]["environment"]["WORKER_IN_WEB"] == "false"
    for name in ("web", "worker"):
        assert COMPOSE["services"][name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }


def test_its_settings_are_read_and_accepted_and_reach_its_postgresql() -> None:
    postgres = COMPOSE["services"]["postgres"]["environment"]
    for name in OURS:
        environment = COMPOSE["services"][name]["environment"]
        assert set(environment) <= settings_variables()
        settings = load_settings(environ=dict(environment), env_file=None)  # refused: SettingsError
        url = urlsplit(settings.database_url or "")
        assert (url.hostname, url.username, url.password, url.path) == (
            "postgres",
            postgres["POSTGRES_USER"],
            postgres["POSTGRES_PASSWORD"],
            f"/{postgres['POSTGRES_DB']}",
        )


def test_the_image_installs_as_the_readme_does_and_runs_as_its_own_user() -> None:
    readme = (ROOT / "README.md").read_text()
    assert ".venv/bin/pip install -e ." in readme  # the README's install, without the checkout
    assert re.search(r"^RUN pip install --no-cache-dir \. ", DOCKERFILE, re.M)
    base = re.search(r"^FROM python:(3\.\d+)-slim$", DOCKERFILE, re.M)
    assert "Python 3.11 or 3.12" in readme and base and base.group(1) in ("3.11", "3.12")
    users = re.findall(r"^USER (\S+)$", DOCKERFILE, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r'^CMD \["contact-sync", "serve"\]$', DOCKERFILE, re.M)


def test_the_deployment_guide_names_both_files() -> None:
    guide = (ROOT / "docs" / "how-to" / "deploy.md").read_text()
    assert "docker compose up" in guide and "Dockerfile" in guide and "docker-compose.yml" in guide
