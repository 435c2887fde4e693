"""The production files in deploy/ read the way systemd reads them, so that the tests start exactly what they say.

A unit's `ExecStart=` becomes an argument list (systemd's quoting and `${NAME}` substitution from the unit's
environment files), with the installed paths of the units (/opt/sync_pipeline, its .venv) mapped onto this checkout.
An environment file template gives the names a service is given; the test supplies the values.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
UNITS = DEPLOY / "systemd"
ENV_TEMPLATES = DEPLOY / "env"
INSTALLED_ROOT = "/opt/sync_pipeline"  # the units' WorkingDirectory: the checkout on the production host
INSTALLED_BIN = f"{INSTALLED_ROOT}/.venv/bin"
INSTALLED_ENV_DIR = "/etc/sync_pipeline"  # where the env templates are installed (EnvironmentFile=)
BIN = Path(sys.executable).parent
_VARIABLE = re.compile(r"\$\$|\$\{(\w+)\}")


@dataclass(frozen=True)
class Unit:
    name: str
    settings: Mapping[str, tuple[str, ...]]  # every `Key=value` of the unit, in order (keys may repeat)

    def one(self, key: str) -> str:
        values = self.settings.get(key, ())
        assert len(values) == 1, f"{self.name}: expected one {key}=, found {values}"
        return values[0]

    def environment_files(self) -> list[Path]:
        """The templates in deploy/env/ for the unit's EnvironmentFile= lines."""
        files = []
        for installed in self.settings.get("EnvironmentFile", ()):
            path = Path(installed.lstrip("-"))
            assert str(path.parent) == INSTALLED_ENV_DIR, f"{self.name}: {installed} is not under {INSTALLED_ENV_DIR}"
            files.append(ENV_TEMPLATES / path.name)
        return files

    def environment_names(self) -> list[str]:
        """Every variable the unit's environment files name, in order."""
        return [name for path in self.environment_files() for name in env_names(path)]

    def command(self, key: str, env: Mapping[str, str]) -> list[str]:
        """`ExecStart` (or another command key) as systemd would run it with `env`, mapped onto this checkout."""
        return [_substitute(word, env).replace(INSTALLED_BIN, str(BIN)) for word in shlex.split(self.one(key))]


def read_unit(path: Path) -> Unit:
    settings: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not a Key=value line: {raw!r}"
        settings.setdefault(key.strip(), []).append(value.strip())
    return Unit(path.name, {k: tuple(v) for k, v in settings.items()})


def unit(name: str) -> Unit:
    return read_unit(UNITS / f"sync-pipeline-{name}.service")


def env_names(path: Path) -> list[str]:
    """The variable names an environment-file template sets (`NAME=` lines; comments skipped)."""
    names = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", ";")):
            name, sep, _ = line.partition("=")
            assert sep and re.fullmatch(r"[A-Z_][A-Z0-9_]*", name), f"{path.name}: bad line {raw!r}"
            names.append(name)
    return names


def env_values(path: Path) -> dict[str, str]:
    """The values a template sets (a template should set none)."""
    values = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", ";")):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def _substitute(word: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        assert name in env, f"the unit uses ${{{name}}}, which its environment files do not set"
        return env[name]

    return _VARIABLE.sub(replace, word)


def option(argv: list[str], *flags: str) -> str | None:
    """The value after the first of `flags` in `argv` (None when absent)."""
    for i, word in enumerate(argv[:-1]):
        if word in flags:
            return argv[i + 1]
    return None


def with_option(argv: list[str], flags: tuple[str, ...], value: str) -> list[str]:
    """`argv` with the value of the option `flags` replaced (the option must be there)."""
    for i, word in enumerate(argv[:-1]):
        if word in flags:
            return [*argv[: i + 1], value, *argv[i + 2 :]]
    raise AssertionError(f"{flags[0]} not in {argv}")
