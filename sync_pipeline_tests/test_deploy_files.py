"""The production files in deploy/ say what the services need, and nothing exposes the admin UI without its login.

Static checks (no process is started; test_production_topology.py starts these files): every `SYNC_*` variable the
code reads is named in deploy/env/sync.env; the templates hold no values; each unit says what it is for and restarts
on failure; the admin webserver binds to 127.0.0.1, the viewer is `--read-only`; no command in the README or the
units puts a writable Dagster UI on an address other than 127.0.0.1.
"""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest

from sync_pipeline_tests.support.deploy import ENV_TEMPLATES, REPO_ROOT, UNITS, env_names, env_values, option, unit

SERVICES = ("code-server", "daemon", "admin", "viewer")
ENV_NAME = re.compile(r"(SYNC_[A-Z0-9_]*[A-Z0-9]|GOOGLE_APPLICATION_CREDENTIALS)")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def variables_the_code_reads() -> set[str]:
    """Every string literal in sync_pipeline/ that is a whole `SYNC_*` name (the code reads variables by literal
    names, in services/environment.py, adapters/mail.py and the channel settings)."""
    found = set()
    for path in (REPO_ROOT / "sync_pipeline").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and ENV_NAME.fullmatch(node.value):
                found.add(node.value)
    return found


def test_every_sync_variable_the_code_reads_is_named_in_the_code_servers_env_template() -> None:
    read = variables_the_code_reads()
    assert {"SYNC_DATABASE_URL", "SYNC_SHEET_SOURCE", "SYNC_SMTP_HOST", "SYNC_MAIL_FROM"} <= read  # the scan works
    listed = set(env_names(ENV_TEMPLATES / "sync.env"))
    assert read - listed == set(), f"read by the code but missing from deploy/env/sync.env: {sorted(read - listed)}"


def test_env_templates_name_variables_without_values() -> None:
    for path in ENV_TEMPLATES.glob("*.env"):
        values = env_values(path)
        assert values, path.name
        assert {k: v for k, v in values.items() if v} == {}, f"{path.name} is a template: no values"
        assert len(values) == len(set(env_names(path))), f"{path.name} names a variable twice"


def test_every_service_reads_dagster_env_and_only_the_code_server_reads_sync_env() -> None:
    for service in SERVICES:
        files = {p.name for p in unit(service).environment_files()}
        assert files == ({"dagster.env", "sync.env"} if service == "code-server" else {"dagster.env"}), service
        assert all((ENV_TEMPLATES / f).exists() for f in files)
    assert {"DAGSTER_HOME", "DAGSTER_PG_HOST", "DAGSTER_PG_DB"} <= set(env_names(ENV_TEMPLATES / "dagster.env"))


@pytest.mark.parametrize("service", SERVICES)
def test_each_unit_says_what_it_is_for_and_restarts_on_failure(service: str) -> None:
    path = UNITS / f"sync-pipeline-{service}.service"
    assert path.read_text().startswith("# "), f"{path.name} opens with a comment saying what it is for"
    assert unit(service).one("Restart") == "on-failure"
    assert "Health:" in path.read_text()


def test_the_admin_webserver_binds_to_127_0_0_1_and_the_viewer_is_read_only() -> None:
    admin = shlex.split(unit("admin").one("ExecStart"))
    viewer = shlex.split(unit("viewer").one("ExecStart"))
    assert Path(admin[0]).name == Path(viewer[0]).name == "dagster-webserver"
    assert option(admin, "-h", "--host") == "127.0.0.1" and "--read-only" not in admin
    assert "--read-only" in viewer
    for argv in (admin, viewer):
        assert option(argv, "-w", "--workspace") == "deploy/workspace.yaml"
    code_server = shlex.split(unit("code-server").one("ExecStart"))
    assert code_server[1:3] == ["code-server", "start"] and option(code_server, "-m") == "sync_pipeline.definitions"


def _ui_commands(text: str) -> list[str]:
    """Every line of `text` that starts a Dagster UI (dagster-webserver or dagster dev)."""
    return [line for line in text.splitlines() if re.search(r"dagster-webserver\b(?!-)|dagster dev\b", line)]


def test_no_command_exposes_a_writable_dagster_ui_beyond_127_0_0_1() -> None:
    sources = {"README.md": (REPO_ROOT / "README.md").read_text()}
    sources.update({p.name: p.read_text() for p in UNITS.glob("*.service")})
    seen = 0
    for name, text in sources.items():
        for line in _ui_commands(text):
            command = line.split("ExecStart=", 1)[-1].strip().strip("`")
            try:
                words = shlex.split(command, comments=True)
            except ValueError:
                words = command.split()
            host = option(words, "-h", "--host")
            seen += 1
            if host is not None and host not in LOCAL_HOSTS:
                assert "--read-only" in words, f"{name}: {line.strip()!r} serves a writable UI on {host}"
    assert seen >= 2  # the units' two webservers at least
