"""GoogleSheetSource: one worksheet's displayed values read through gspread, with the project's bounded retries."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import gspread
import requests
import requests.adapters
import requests.utils
from google.auth import exceptions as google_auth_exceptions
from gspread.utils import absolute_range_name

from sync_pipeline.adapters.retry import (
    DEFAULT_POLICY,
    RetriesExhaustedError,
    RetryPolicy,
    describe_failure,
    http_status_of,
    is_transient_http_error,
    retry_call,
)
from sync_pipeline.adapters.sheets.base import RetryListener
from sync_pipeline.adapters.sheets.gsheet_answers import (
    MAJOR_DIMENSION,
    NOTES_FIELDS,
    IncompleteAnswerError,
    checked_values,
    json_object,
    note_request,
    notes_of,
    parse_spreadsheet_ref,
)
from sync_pipeline.adapters.sheets.gsheet_setup import (
    NOTES_SCOPES,
    READ_ONLY_SCOPES,
    SERVICE_ACCOUNT_FILE_ENV,
    SHEETS_API_URL_ENV,
    credentials_source,
    load_credentials,
    normalised_api_url,
)
from sync_pipeline.domain.errors import ErrorCategory, SheetFeedbackError, SheetReadError
from sync_pipeline.domain.feedback import Cell, NoteChange
from sync_pipeline.domain.sheet import RawSheet

CONNECT_TIMEOUT_SECONDS = 10.0  # reaching Google takes well under a second; 10 s means the path is broken
# Seconds of silence allowed while Google computes the answer; a 50 000-row sheet answers in a few seconds.
READ_TIMEOUT_SECONDS = 60.0
REQUEST_TIMEOUT: tuple[float, float] = (CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS)

# The origins gspread sends to (Sheets API v4 and Drive v3); an API base URL replaces them, path kept.
GOOGLE_API_ORIGINS = ("https://sheets.googleapis.com", "https://www.googleapis.com")

# FORMATTED_VALUE: each cell as the office sees it (formulas evaluated, leading zeros and date formats kept).
VALUE_RENDER_OPTION = "FORMATTED_VALUE"
# The link the browser opens a cell with: always the public UI, also when the API is an emulator (no UI to open).
CELL_URL = "https://docs.google.com/spreadsheets/d/{key}/edit#gid={gid}&range={cell}"

Timeout = float | tuple[float, float]
T = TypeVar("T")


class _RebaseAdapter(requests.adapters.HTTPAdapter):
    """Sends requests meant for a Google API origin to another base URL (an emulator or a proxy) instead."""

    def __init__(self, origin: str, base_url: str) -> None:
        super().__init__()
        self._origin = origin
        self._base_url = base_url

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        url = request.url or ""
        if url.lower().startswith(self._origin):
            request.url = self._base_url + url[len(self._origin) :]
            # The proxies were chosen for Google's host; the new host has its own NO_PROXY standing.
            proxies = requests.utils.get_environ_proxies(request.url)
        return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies)


class GoogleSheetSource:
    """Reads the whole used range of one worksheet in one values request, as displayed text.

    `spreadsheet` is a key or a URL; `worksheet` a title (default: the tab a URL's gid names, else the first).
    Credentials: `credentials_file`, else $SYNC_GOOGLE_SERVICE_ACCOUNT_FILE, else $GOOGLE_APPLICATION_CREDENTIALS.
    `api_url` (else $SYNC_SHEETS_API_URL) sends the Sheets and Drive calls to an emulator or proxy instead of Google.
    """

    def __init__(
        self,
        spreadsheet: str,
        worksheet: str | None = None,
        *,
        credentials_file: str | os.PathLike[str] | None = None,
        api_url: str | None = None,
        timeout: Timeout = REQUEST_TIMEOUT,
        retry_policy: RetryPolicy = DEFAULT_POLICY,
        sleep: Callable[[float], None] = time.sleep,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env: Mapping[str, str] = {} if environ is None else environ  # the caller resolves the environment
        ref = parse_spreadsheet_ref(spreadsheet)
        self.key = ref.key
        self._gid = ref.gid
        self.worksheet = worksheet.strip() if worksheet and worksheet.strip() else None
        self._credentials_source = credentials_source(credentials_file, env)
        self.api_url = normalised_api_url(api_url or env.get(SHEETS_API_URL_ENV) or None)
        self._timeout = timeout
        self._retry_policy = retry_policy
        self._sleep = sleep
        self._resolved_title: str | None = None
        self._sheet_id: int | None = None  # the worksheet's gid, known once read: notes are addressed by it
        self._scopes: tuple[str, ...] = READ_ONLY_SCOPES
        self._client: gspread.Client | None = None
        self._client_email: str | None = None
        self._token_uri: str | None = None

    @property
    def description(self) -> str:
        title = self.worksheet or self._resolved_title
        if title is None:
            title = f"gid={self._gid}" if self._gid is not None else "(first worksheet)"
        return f"gsheet:{self.key}/{title}"

    def read(self, on_retry: RetryListener | None = None) -> RawSheet:
        """The whole used range in one values request (plus one metadata request), retried when transient."""
        client = self._gspread_client()
        try:
            return self._retried(lambda: self._read_once(client), f"read sheet {self.description}", on_retry)
        except RetriesExhaustedError as exc:
            raise SheetReadError(
                ErrorCategory.NETWORK,
                f"could not read {self.description}: {exc.reason}, still failing after {exc.attempts} attempts. "
                "Nothing was synced from it; the next sync tries again. If this persists, check the network path "
                "to Google "
                f"(proxy, firewall{', ' + SHEETS_API_URL_ENV if self.api_url else ''}) and Google's status page.",
                transient=True,
            ) from exc
        except gspread.exceptions.APIError as exc:
            raise self._api_error(exc) from exc
        except google_auth_exceptions.GoogleAuthError as exc:
            raise self._auth_error(exc) from exc
        except requests.RequestException as exc:  # not transient: a certificate, a malformed URL
            raise SheetReadError(
                ErrorCategory.NETWORK,
                f"could not read {self.description}: {describe_failure(exc)}. Check {SHEETS_API_URL_ENV} and the "
                "proxy / CA certificate settings of this machine.",
            ) from exc

    def _retried(self, attempt: Callable[[], T], operation: str, on_retry: RetryListener | None) -> T:
        """`attempt` with the project's bounded retries of what is transient (429, 5xx, dropped connections, a
        cut-short answer), the same for the read and the notes."""
        return retry_call(
            attempt,
            operation=operation,
            policy=self._retry_policy,
            is_transient=_is_transient,
            describe=_describe,
            on_retry=on_retry,
            sleep=self._sleep,
        )

    # --- one attempt -------------------------------------------------------------------------------------------

    def _read_once(self, client: gspread.Client) -> RawSheet:
        http = client.http_client
        # Metadata is fetched again on every attempt so that the coverage check compares like with like even when
        # rows were added or deleted between two attempts.
        metadata = json_object(http.fetch_sheet_metadata(self.key), "spreadsheet metadata")
        properties = self._pick_worksheet(metadata)
        title: str = properties["title"]
        answer = json_object(
            http.values_get(
                self.key,
                absolute_range_name(title),
                params={"valueRenderOption": VALUE_RENDER_OPTION, "majorDimension": MAJOR_DIMENSION},
            ),
            "values answer",
        )
        grid = properties.get("gridProperties") or {}
        values = checked_values(answer, title, grid.get("rowCount"), grid.get("columnCount"))
        self._resolved_title = title
        sheet_id = properties.get("sheetId")
        self._sheet_id = sheet_id if isinstance(sheet_id, int) else None
        cell_url = None if sheet_id is None else CELL_URL.format(key=self.key, gid=sheet_id, cell="{cell}")
        return RawSheet(source=f"gsheet:{self.key}/{title}", values=values, first_row=1, cell_url=cell_url)

    def _pick_worksheet(self, metadata: Mapping[str, Any]) -> Mapping[str, Any]:
        sheets = metadata.get("sheets")
        if not isinstance(sheets, list) or not all(
            isinstance(s, dict)
            and isinstance(s.get("properties"), dict)
            and isinstance(s["properties"].get("title"), str)
            for s in sheets
        ):
            raise IncompleteAnswerError("spreadsheet metadata without a list of titled worksheets")
        all_props: list[Mapping[str, Any]] = [s["properties"] for s in sheets]
        spreadsheet_title = (metadata.get("properties") or {}).get("title", "")
        existing = ", ".join(repr(p.get("title")) for p in all_props) or "none"
        if self.worksheet is not None:
            for props in all_props:
                if props.get("title") == self.worksheet:
                    return props
            raise SheetReadError(
                ErrorCategory.CONFIGURATION,
                f"worksheet {self.worksheet!r} not found in spreadsheet {self.key} ({spreadsheet_title!r}); its "
                f"worksheets are: {existing}. Set the worksheet (--worksheet / SYNC_SHEET_WORKSHEET) to one of them.",
            )
        if self._gid is not None:
            for props in all_props:
                if props.get("sheetId") == self._gid:
                    return props
            raise SheetReadError(
                ErrorCategory.CONFIGURATION,
                f"the URL names worksheet gid={self._gid}, which spreadsheet {self.key} ({spreadsheet_title!r}) "
                f"does not have; its worksheets are: {existing}. Give the worksheet title instead.",
            )
        # Chart sheets (sheetType OBJECT) hold no cells; the first sheet with cells is the data.
        for props in all_props:
            if props.get("sheetType", "GRID") == "GRID":
                return props
        raise SheetReadError(
            ErrorCategory.CONFIGURATION,
            f"spreadsheet {self.key} ({spreadsheet_title!r}) has no worksheet with cells (it has: {existing}): "
            "point the sync at the spreadsheet that holds the seller list.",
        )

    # --- the sync's notes (sheet_feedback = notes) -------------------------------------------------------------

    def allow_note_writes(self) -> None:
        """Ask Google for the `spreadsheets` scope (read and write) instead of the read-only one: called before the
        first request of a sync that is to write its notes, so that one token serves the read and the write."""
        if self._scopes != NOTES_SCOPES:
            self._scopes = NOTES_SCOPES
            self._client = None  # a client made earlier holds a read-only token

    def read_notes(self, on_retry: RetryListener | None = None) -> dict[Cell, str]:
        """Every note of the worksheet this source read last, by cell: one `spreadsheets.get` with a field mask
        asking for notes only (the whole worksheet, so that a note of the sync's that moved with its row is found)."""
        title = self._read_title("read the notes of")
        answer = self._notes_call(
            lambda http: http.spreadsheets_get(
                self.key, params={"ranges": absolute_range_name(title), "fields": NOTES_FIELDS}
            ),
            f"read the notes of {self.description}",
            on_retry,
        )
        return notes_of(json_object(answer, "notes answer"), self._sheet_id)

    def write_notes(self, changes: Sequence[NoteChange], on_retry: RetryListener | None = None) -> None:
        """All the changes in one `spreadsheets.batchUpdate` (one `updateCells` of the `note` field per cell, the
        request gspread's `update_notes` builds): Google applies all of them or none. Nothing is sent for none."""
        if not changes:
            return
        self._read_title("write notes into")
        if self._sheet_id is None:
            raise SheetFeedbackError(
                ErrorCategory.UNKNOWN, f"the sheets API gave no sheet id for {self.description}; notes not written"
            )
        body = {"requests": [note_request(self._sheet_id, change) for change in changes]}
        self._notes_call(
            lambda http: http.batch_update(self.key, body), f"write notes into {self.description}", on_retry
        )

    def _read_title(self, doing: str) -> str:
        if self._resolved_title is None:
            raise RuntimeError(f"{doing} {self.description} before reading it: read() first")
        return self._resolved_title

    def _notes_call(self, call: Callable[[Any], Any], operation: str, on_retry: RetryListener | None) -> Any:
        """One notes request with the read's bounded retries (429, 5xx, dropped connections); what still fails is a
        SheetFeedbackError that says what to do."""
        client = self._gspread_client()
        try:
            return self._retried(lambda: call(client.http_client), operation, on_retry)
        except RetriesExhaustedError as exc:
            raise SheetFeedbackError(
                ErrorCategory.NETWORK,
                f"could not {operation}: {exc.reason}, still failing after {exc.attempts} attempts; the next sync "
                "tries again.",
                transient=True,
            ) from exc
        except gspread.exceptions.APIError as exc:
            raise self._notes_error(exc, operation) from exc
        except google_auth_exceptions.GoogleAuthError as exc:
            failure = self._auth_error(exc)
            raise SheetFeedbackError(failure.category, failure.message) from exc
        except requests.RequestException as exc:
            raise SheetFeedbackError(ErrorCategory.NETWORK, f"could not {operation}: {describe_failure(exc)}") from exc

    def _notes_error(self, exc: gspread.exceptions.APIError, operation: str) -> SheetFeedbackError:
        status = http_status_of(exc)
        google_message = _google_message(exc)
        email = self._client_email or "the service account"
        if status == 403:
            return SheetFeedbackError(
                ErrorCategory.CONFIGURATION,
                f"could not {operation}: HTTP 403 (Google said: {google_message}). The service account {email} may "
                "read the sheet but not edit it: share the spreadsheet with it as an Editor, or set "
                "`sheet_feedback=off`. The sync itself is not affected.",
            )
        return SheetFeedbackError(
            ErrorCategory.CONFIGURATION if status in {400, 404} else ErrorCategory.UNKNOWN,
            f"could not {operation}: HTTP {status} (Google said: {google_message}). The sync itself is not "
            "affected; the next sync tries again.",
        )

    # --- setup and error mapping -------------------------------------------------------------------------------

    def _gspread_client(self) -> gspread.Client:
        if self._client is not None:
            return self._client
        loaded = load_credentials(self._credentials_source, self._scopes)
        client = gspread.Client(auth=loaded.credentials)
        client.set_timeout(self._timeout)  # gspread's default is no timeout at all: a stalled read would hang
        if self.api_url is not None:
            session = client.http_client.session
            for origin in GOOGLE_API_ORIGINS:
                session.mount(origin + "/", _RebaseAdapter(origin, self.api_url))
        self._client = client
        self._client_email = loaded.client_email
        self._token_uri = loaded.token_uri
        return client

    def _share_hint(self) -> str:
        email = self._client_email or "the service account"
        if self._scopes == NOTES_SCOPES:  # sheet_feedback = notes: the sync writes notes into the sheet
            return f"share the spreadsheet with {email} as an Editor (sheet_feedback=notes writes notes into it)"
        return f"share the spreadsheet with {email} (Viewer is enough)"

    def _api_error(self, exc: gspread.exceptions.APIError) -> SheetReadError:
        status = http_status_of(exc)
        google_message = _google_message(exc)
        email = self._client_email or "the service account"
        if status == 404:
            return SheetReadError(
                ErrorCategory.CONFIGURATION,
                f"spreadsheet {self.key} not found or not shared with the service account {email}: check the key "
                f"or URL, and {self._share_hint()}.",
            )
        if status == 403:
            return SheetReadError(
                ErrorCategory.CONFIGURATION,
                f"no access to spreadsheet {self.key} for the service account {email} (Google said: "
                f"{google_message}): {self._share_hint()}. If Google says the Sheets API is disabled, enable it "
                "in the service account's Cloud project.",
            )
        if status == 401:
            return SheetReadError(
                ErrorCategory.CONFIGURATION,
                f"Google did not accept the access token of the service account {email} (Google said: "
                f"{google_message}): check that the key file is that account's current key.",
            )
        if status == 400:
            return SheetReadError(
                ErrorCategory.CONFIGURATION,
                f"Google refused the request for {self.description} (HTTP 400: {google_message}): check the "
                "spreadsheet key and the worksheet title.",
            )
        return SheetReadError(
            ErrorCategory.UNKNOWN,
            f"unexpected HTTP {status} from the Sheets API reading {self.description} (Google said: "
            f"{google_message}): retry later; if it persists, report it with this message.",
        )

    def _auth_error(self, exc: google_auth_exceptions.GoogleAuthError) -> SheetReadError:
        email = self._client_email or "the service account"
        token_uri = self._token_uri or "the token endpoint"
        if isinstance(exc, google_auth_exceptions.TransportError):
            return SheetReadError(
                ErrorCategory.NETWORK,
                f"could not reach {token_uri} to sign in as {email}: {exc}. Check the network path to Google and "
                "the key file's token_uri.",
            )
        return SheetReadError(
            ErrorCategory.CONFIGURATION,
            f"{token_uri} refused to sign in the service account {email}: {exc}. The key may have been deleted or "
            f"disabled: create a new JSON key for the account and point {SERVICE_ACCOUNT_FILE_ENV} at it.",
        )


# --- helpers --------------------------------------------------------------------------------------------------


def _google_message(exc: gspread.exceptions.APIError) -> str:
    """What Google said in its error body (quoted in our messages)."""
    return str(exc.error.get("message", "")).strip() or "no message"


def _is_rate_limit_403(exc: BaseException) -> bool:
    """Google answers some quota limits with 403 rather than 429; those are transient, unlike a missing share."""
    if http_status_of(exc) != 403 or not isinstance(exc, gspread.exceptions.APIError):
        return False
    error = exc.error
    if error.get("status") == "RESOURCE_EXHAUSTED":
        return True
    details: Sequence[Any] = error.get("errors") or ()
    return any(
        isinstance(d, dict) and d.get("reason") in {"rateLimitExceeded", "userRateLimitExceeded"} for d in details
    )


def _is_transient(exc: BaseException) -> bool:
    if _is_rate_limit_403(exc):
        return True
    if isinstance(exc, IncompleteAnswerError | requests.exceptions.JSONDecodeError):
        return True  # a 200 whose body is cut short or not JSON (a proxy's error page): another attempt may do
    if isinstance(exc, google_auth_exceptions.TransportError):
        # The token request failed on the way; judge it by what failed underneath.
        cause = exc.__cause__
        return cause is None or is_transient_http_error(cause)
    if isinstance(exc, google_auth_exceptions.RefreshError):
        return bool(exc.retryable)  # google-auth has already retried these itself; ours is the outer bound
    return is_transient_http_error(exc)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, IncompleteAnswerError):
        return f"incomplete answer ({exc})"
    if isinstance(exc, requests.exceptions.JSONDecodeError):
        return "answer is not JSON"
    if isinstance(exc, google_auth_exceptions.GoogleAuthError):
        cause = exc.__cause__
        return f"sign-in failed ({describe_failure(cause) if cause is not None else exc})"
    return describe_failure(exc)
