"""Signing in to the Sheets API and where to send its requests: the service-account key file (named by the setting or
the environment), the scopes asked for, and the API base URL (Google's, an emulator's or a proxy's). Every problem is
a SheetReadError of category configuration that says which file or variable to fix. `gsheet.py` uses it."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from google.auth import exceptions as google_auth_exceptions
from google.oauth2 import service_account

from sync_pipeline.domain.errors import ErrorCategory, SheetReadError

SERVICE_ACCOUNT_FILE_ENV = "SYNC_GOOGLE_SERVICE_ACCOUNT_FILE"
GOOGLE_CREDENTIALS_ENV = "GOOGLE_APPLICATION_CREDENTIALS"  # Google's own convention, honoured as a fallback
SHEETS_API_URL_ENV = "SYNC_SHEETS_API_URL"

# Read-only unless the sync is to write its notes into the sheet (`sheet_feedback = notes`): a key that leaks while
# feedback is off cannot be used to change the sheet, and the sheet may be shared with the account as a Viewer.
READ_ONLY_SCOPES = ("https://www.googleapis.com/auth/spreadsheets.readonly",)
NOTES_SCOPES = ("https://www.googleapis.com/auth/spreadsheets",)


@dataclass(frozen=True)
class Credentials:
    credentials: service_account.Credentials
    client_email: str
    token_uri: str  # honoured by google-auth: an emulator's or a proxy's token endpoint in tests and behind proxies


@dataclass(frozen=True)
class CredentialsSource:
    path: Path | None
    origin: str  # where the path came from, named in messages


def credentials_source(explicit: str | os.PathLike[str] | None, env: Mapping[str, str]) -> CredentialsSource:
    if explicit is not None and str(explicit).strip():
        return CredentialsSource(Path(explicit).expanduser(), "the credentials file setting")
    for name in (SERVICE_ACCOUNT_FILE_ENV, GOOGLE_CREDENTIALS_ENV):
        value = env.get(name, "").strip()
        if value:
            return CredentialsSource(Path(value).expanduser(), f"${name}")
    return CredentialsSource(None, "")


def load_credentials(source: CredentialsSource, scopes: Sequence[str] = READ_ONLY_SCOPES) -> Credentials:
    set_it = (
        f"set {SERVICE_ACCOUNT_FILE_ENV} (or {GOOGLE_CREDENTIALS_ENV}) to the path of the service account's JSON "
        "key file"
    )
    if source.path is None:
        raise SheetReadError(
            ErrorCategory.CONFIGURATION,
            f"no Google service-account credentials configured for reading a Google Sheet: {set_it}.",
        )
    try:
        text = source.path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SheetReadError(
            ErrorCategory.CONFIGURATION,
            f"the service-account key file {source.path} (from {source.origin}) does not exist: {set_it}.",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SheetReadError(
            ErrorCategory.CONFIGURATION,
            f"cannot read the service-account key file {source.path} (from {source.origin}): {exc}. Make it "
            f"readable by this process, or {set_it}.",
        ) from exc
    not_a_key = (
        f"{source.path} (from {source.origin}) is not a service-account JSON key ({{detail}}): download a JSON key "
        f"(Google Cloud console → IAM → Service accounts → Keys) and {set_it}."
    )
    try:
        info = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SheetReadError(ErrorCategory.CONFIGURATION, not_a_key.format(detail=f"not JSON: {exc}")) from exc
    if not isinstance(info, dict) or info.get("type") != "service_account":
        kind = info.get("type") if isinstance(info, dict) else type(info).__name__
        raise SheetReadError(ErrorCategory.CONFIGURATION, not_a_key.format(detail=f"its type is {kind!r}"))
    try:
        credentials = service_account.Credentials.from_service_account_info(info, scopes=list(scopes))
    except (ValueError, TypeError, google_auth_exceptions.GoogleAuthError) as exc:
        raise SheetReadError(ErrorCategory.CONFIGURATION, not_a_key.format(detail=str(exc))) from exc
    return Credentials(credentials, str(info["client_email"]), str(info["token_uri"]))


def normalised_api_url(url: str | None) -> str | None:
    if url is None or not url.strip():
        return None
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise SheetReadError(
            ErrorCategory.CONFIGURATION,
            f"the Sheets API base URL {url!r} ({SHEETS_API_URL_ENV}) must start with http:// or https://: give "
            "the emulator's or proxy's base URL, e.g. http://127.0.0.1:8085, or unset it to talk to Google",
        )
    return url
