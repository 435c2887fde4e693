"""A local Google Sheets API v4 emulator (plus OAuth token and Drive files list) with fault injection, on 127.0.0.1."""

from __future__ import annotations

import base64
import binascii
import collections
import json
import re
import secrets
import sys
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

HOST = "127.0.0.1"  # never reachable from another machine
DEFAULT_ROW_COUNT = 1000  # the grid a new Google worksheet starts with: 1000 rows ...
DEFAULT_COLUMN_COUNT = 26  # ... by 26 columns (A:Z)
TOKEN_LIFETIME_SECONDS = 3600  # what Google's token endpoint grants a service account
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# google-auth always addresses the grant to Google's endpoint, whatever token_uri the key file names.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
SHEETS_MIME_TYPE = "application/vnd.google-apps.spreadsheet"
DEFAULT_DRIVE_PAGE_SIZE = 100  # Drive's default pageSize for files.list
SERVE_POLL_SECONDS = 0.05  # how quickly serve_forever notices shutdown; keeps fixture teardown fast
FIXED_TIME = "2026-01-05T09:00:00.000Z"  # createdTime / modifiedTime of every emulated file: tests need no clock

PathKind = Literal[
    "token", "metadata", "grid_data", "values", "batch_get", "batch_update", "drive_files", "drive_file", "unknown"
]
FaultAction = Literal["status", "slow", "drop", "garbage", "truncate", "partial"]
FAULT_KINDS = frozenset(
    {"token", "metadata", "grid_data", "values", "batch_get", "batch_update", "drive_files", "drive_file"}
)
# Scopes that allow spreadsheets.batchUpdate; spreadsheets.readonly (and drive.readonly) only read.
WRITE_SCOPES = frozenset(
    {
        "https://www.googleapis.com/auth/spreadsheets",
        "https://www.googleapis.com/auth/drive",
        "https://www.googleapis.com/auth/drive.file",
    }
)
# The batchUpdate request kinds Google knows; only updateCells of the `note` field is emulated.
_KNOWN_REQUESTS = frozenset(
    {
        "updateCells",
        "repeatCell",
        "updateSheetProperties",
        "addSheet",
        "deleteSheet",
        "insertDimension",
        "deleteDimension",
        "appendCells",
        "mergeCells",
        "addConditionalFormatRule",
        "setDataValidation",
        "updateBorders",
        "autoResizeDimensions",
        "sortRange",
        "findReplace",
        "pasteData",
        "copyPaste",
    }
)

# Google's canonical error statuses, used in the JSON error bodies.
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_ERROR_MESSAGES = {
    401: "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or "
    "other valid authentication credential.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute per user' of service "
    "'sheets.googleapis.com'.",
    500: "Internal error encountered.",
    503: "The service is currently unavailable.",
}
# Google's front end answers 502 with an HTML page, not JSON: clients must not depend on the error body.
_HTML_502 = b"<!DOCTYPE html><html><title>Error 502 (Server Error)!!1</title><p><b>502.</b> That's an error.</html>"
_GARBAGE_BODY = b"<html><body>Proxy error: upstream connection reset</body></html>"
_A1_BOUND_RE = re.compile(r"([A-Za-z]*)([0-9]*)")
_SIMPLE_TITLE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LOOKS_LIKE_CELL_RE = re.compile(r"[A-Za-z]{1,3}[0-9]+|[RrCc][0-9]*")
_DRIVE_NAME_RE = re.compile(r"""name\s*=\s*["']((?:[^"'\\]|\\.)*)["']""")


@dataclass(frozen=True)
class _Fault:
    action: FaultAction
    status: int = 200
    retry_after: str | None = None
    seconds: float = 0.0
    body: bytes | None = None


@dataclass
class RecordedRequest:
    """One request the emulator received; `status` is None until answered, and stays None when dropped."""

    method: str
    path: str  # decoded, without the query string
    kind: PathKind
    query: Mapping[str, list[str]]
    authorized: bool
    fault: FaultAction | None
    status: int | None = None


@dataclass
class _Worksheet:
    sheet_id: int
    title: str
    rows: list[list[str]]
    row_count: int
    column_count: int
    notes: dict[tuple[int, int], str] = field(default_factory=dict)  # (1-based row, 1-based column) -> note


@dataclass
class _Spreadsheet:
    key: str
    title: str
    worksheets: list[_Worksheet]
    shared: bool
    editable: bool = True  # False: shared with the service account as a Viewer


@dataclass(frozen=True)
class ReceivedBatchUpdate:
    """One spreadsheets.batchUpdate body as received, and whether it was applied (a refused one changes nothing)."""

    key: str
    body: Mapping[str, Any]
    applied: bool


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    content_type: str = "application/json; charset=UTF-8"
    headers: Mapping[str, str] = field(default_factory=dict)


def _json_answer(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> _Answer:
    return _Answer(status, json.dumps(payload, ensure_ascii=False).encode("utf-8"), headers=headers or {})


def _google_error(status: int, message: str | None = None) -> _Answer:
    if status == 502:
        return _Answer(status, _HTML_502, content_type="text/html; charset=UTF-8")
    text = message or _ERROR_MESSAGES.get(status, f"HTTP {status}")
    payload = {"error": {"code": status, "message": text, "status": _STATUS_NAMES.get(status, "UNKNOWN")}}
    headers = {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'} if status == 401 else {}
    return _json_answer(status, payload, headers)


def _oauth_error(status: int, error: str, description: str) -> _Answer:
    return _json_answer(status, {"error": error, "error_description": description})


def _column_letters(col: int) -> str:
    """1-based column number → letters (1 → A, 27 → AA)."""
    letters = ""
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return letters


def _column_number(letters: str) -> int:
    number = 0
    for letter in letters.upper():
        number = number * 26 + ord(letter) - ord("A") + 1
    return number


def _quote_title(title: str) -> str:
    if _SIMPLE_TITLE_RE.fullmatch(title) and not _LOOKS_LIKE_CELL_RE.fullmatch(title):
        return title
    return "'" + title.replace("'", "''") + "'"


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _trim(rows: list[list[str]]) -> list[list[str]]:
    """Drop trailing empty cells of each row and trailing empty rows, as the Sheets API does."""
    trimmed = []
    for row in rows:
        end = len(row)
        while end and row[end - 1] == "":
            end -= 1
        trimmed.append(row[:end])
    while trimmed and not trimmed[-1]:
        trimmed.pop()
    return trimmed


def _cell(a1: str) -> tuple[int, int]:
    """An A1 reference of one cell → (1-based row, 1-based column)."""
    match = re.fullmatch(r"([A-Za-z]+)([1-9][0-9]*)", a1.strip())
    if match is None:
        raise ValueError(f"not an A1 reference of one cell: {a1!r}")
    return int(match.group(2)), _column_number(match.group(1))


class _RangeError(ValueError):
    pass


class _MaskError(ValueError):
    pass


Mask = dict[str, "Mask | None"]  # a field name -> the mask of its members (None: all of them)


def _parse_mask(text: str) -> Mask:
    """Google's field-mask syntax: comma lists, paths with `.` or `/` (gspread sends both), nested `a(b,c(d))`."""
    pos = 0

    def parse_list() -> Mask:
        nonlocal pos
        tree: Mask = {}
        while True:
            match = re.compile(r"[^,()]*").match(text, pos)
            assert match is not None
            path = match.group(0)
            pos = match.end()
            if not path or not re.fullmatch(r"[A-Za-z_*][A-Za-z0-9_]*(?:[./][A-Za-z_][A-Za-z0-9_]*)*", path):
                raise _MaskError(f"Error expanding 'fields' parameter. Cannot find matching fields for path '{path}'.")
            sub: Mask | None = None
            if pos < len(text) and text[pos] == "(":
                pos += 1
                sub = parse_list()
                if pos >= len(text) or text[pos] != ")":
                    raise _MaskError("Error expanding 'fields' parameter: unbalanced parentheses.")
                pos += 1
            _merge(tree, re.split(r"[./]", path), sub)
            if pos < len(text) and text[pos] == ",":
                pos += 1
                continue
            return tree

    tree = parse_list()
    if pos != len(text):
        raise _MaskError(f"Error expanding 'fields' parameter: unexpected {text[pos]!r} at {pos}.")
    return tree


def _merge(tree: Mask, parts: list[str], sub: Mask | None) -> None:
    node = tree
    for part in parts[:-1]:
        if part in node and node[part] is None:
            return  # already all of it
        child = node.setdefault(part, {})
        assert child is not None
        node = child
    last = parts[-1]
    if sub is None or (last in node and node[last] is None):
        node[last] = None
    else:
        existing = node.get(last) or {}
        for name, inner in sub.items():
            _merge(existing, [name], inner)
        node[last] = existing


def _masked(value: Any, mask: Mask | None) -> Any:
    """The members of `value` the mask selects, in the answer's own order (list items left empty stay `{}`)."""
    if mask is None or "*" in mask:
        return value
    if isinstance(value, list):
        return [_masked(item, mask) for item in value]
    if isinstance(value, dict):
        return {k: _masked(v, mask[k]) for k, v in value.items() if k in mask}
    return value


def _grid_data(ws: _Worksheet, window: tuple[int, int, int, int]) -> dict[str, Any]:
    """One GridData as Google answers it: 0-based start row/column (left out when 0), rows up to the last one with a
    value or a note, each row's cells up to its last with either; a cell without both is `{}`."""
    r1, c1, r2, c2 = window
    last_row = max([len(ws.rows), *(r for r, _ in ws.notes)], default=0)
    rows: list[dict[str, Any]] = []
    for r in range(r1, min(r2, last_row) + 1):
        text = ws.rows[r - 1] if r <= len(ws.rows) else []
        cells: list[dict[str, Any]] = []
        for c in range(c1, c2 + 1):
            cell: dict[str, Any] = {}
            value = text[c - 1] if c <= len(text) else ""
            if value:
                cell["formattedValue"] = value
            note = ws.notes.get((r, c))
            if note:
                cell["note"] = note
            cells.append(cell)
        while cells and not cells[-1]:
            cells.pop()
        rows.append({"values": cells} if cells else {})
    while rows and not rows[-1]:
        rows.pop()
    data: dict[str, Any] = {}
    if r1 > 1:
        data["startRow"] = r1 - 1
    if c1 > 1:
        data["startColumn"] = c1 - 1
    if rows:
        data["rowData"] = rows
    return data


def _trim_grid(data: dict[str, Any]) -> None:
    """Drop the trailing empty cells of each row and the trailing empty rows, as Google does once the mask has
    emptied them (gspread's get_notes: "as tall as the last row with a note, each row as long as its last note")."""
    rows = data.get("rowData")
    if rows is None:
        return
    for row in rows:
        values = row.get("values")
        if values is None:
            continue
        while values and not values[-1]:
            values.pop()
        if not values:
            del row["values"]
    while rows and not rows[-1]:
        rows.pop()
    if not rows:
        del data["rowData"]


def _wants_grid(mask: Mask) -> bool:
    """Whether a mask selects the sheets' grid data (Google ignores includeGridData once a mask is given)."""
    if "*" in mask:
        return True
    if "sheets" not in mask:
        return False
    sheets = mask["sheets"]
    return sheets is None or "*" in sheets or "data" in sheets


class SheetsEmulator:
    """A Sheets API v4 server for gspread, on 127.0.0.1 and an ephemeral port.

    Use as a context manager (`with SheetsEmulator() as emulator:`). Set the data with `add_spreadsheet`, make
    requests fail with `fail_next`, `slow`, `drop_connection`, `garbage`, `truncate` and `partial` (queued per path
    kind: token, metadata, grid_data, values, batch_get, batch_update, drive_files, drive_file), and read `requests`
    to count calls. Cell notes: seed them with `add_spreadsheet(notes=…)`, edit as a person would with `set_note` /
    `set_cell`, read them with `notes`; a `spreadsheets.get` whose field mask names `sheets.data` answers grid data
    (notes, formattedValue) and `spreadsheets.batchUpdate` applies updateCells of notes — only with a token of the
    `spreadsheets` scope and on a sheet not shared read-only (`editable=False`), as Google does.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._spreadsheets: dict[str, _Spreadsheet] = {}
        self._faults: dict[str, collections.deque[_Fault]] = collections.defaultdict(collections.deque)
        self._requests: list[RecordedRequest] = []
        self._tokens: dict[str, frozenset[str]] = {}  # access token -> the scopes it was granted
        self._batch_updates: list[ReceivedBatchUpdate] = []
        self._trusted_keys: dict[str, rsa.RSAPublicKey] = {}
        self.token_claims: list[dict[str, Any]] = []  # the JWT claims of every granted token request
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> SheetsEmulator:
        server = _Server((HOST, 0), _Handler)
        server.emulator = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": SERVE_POLL_SECONDS}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # wakes handlers sleeping in a `slow` fault
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> SheetsEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL to give the source as its API URL (replaces https://sheets.googleapis.com)."""
        if self._server is None:
            raise RuntimeError("the emulator is not running: use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def token_uri(self) -> str:
        """The OAuth token endpoint, for the service-account key file's token_uri."""
        return self.url + "/token"

    # --- test set-up -----------------------------------------------------------------------------------------

    def add_spreadsheet(
        self,
        key: str,
        title: str,
        worksheets: Mapping[str, Sequence[Sequence[str]]],
        *,
        shared: bool = True,
        editable: bool = True,
        grid: Mapping[str, tuple[int, int]] | None = None,
        notes: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        """A spreadsheet whose worksheets (in order) hold the given displayed cell text.

        `shared=False` makes it exist but answer 403, as for a sheet not shared with the service account;
        `editable=False` shares it as a Viewer: reads work, a batchUpdate answers 403.
        `grid` gives (rowCount, columnCount) per worksheet; by default 1000 x 26 or the data's size if larger.
        `notes` gives each worksheet's cell notes by A1 reference, as people wrote them.
        """
        sheets = []
        for index, (ws_title, rows) in enumerate(worksheets.items()):
            data = [list(row) for row in rows]
            width = max((len(row) for row in data), default=0)
            rows_n, cols_n = (grid or {}).get(
                ws_title, (max(DEFAULT_ROW_COUNT, len(data)), max(DEFAULT_COLUMN_COUNT, width))
            )
            if rows_n < len(data) or cols_n < width:
                raise ValueError(f"grid {rows_n}x{cols_n} of {ws_title!r} is smaller than its data")
            # Like Google, the first worksheet has gid 0 and the others large stable ids.
            sheet_id = 0 if index == 0 else zlib.crc32(f"{key}/{ws_title}".encode()) % 2_000_000_000
            seeded = {_cell(a1): text for a1, text in (notes or {}).get(ws_title, {}).items() if text}
            sheets.append(_Worksheet(sheet_id, ws_title, data, rows_n, cols_n, seeded))
        with self._lock:
            self._spreadsheets[key] = _Spreadsheet(key, title, sheets, shared, editable)

    def sheet_id(self, key: str, worksheet: str) -> int:
        with self._lock:
            return next(ws.sheet_id for ws in self._spreadsheets[key].worksheets if ws.title == worksheet)

    def notes(self, key: str, worksheet: str) -> dict[str, str]:
        """The worksheet's notes now, by A1 reference (cells without a note left out)."""
        with self._lock:
            ws = self._worksheet(key, worksheet)
            return {f"{_column_letters(c)}{r}": text for (r, c), text in sorted(ws.notes.items())}

    def set_note(self, key: str, worksheet: str, a1: str, text: str) -> None:
        """A person edits a cell's note in the browser ("" removes it)."""
        with self._lock:
            ws = self._worksheet(key, worksheet)
            if text:
                ws.notes[_cell(a1)] = text
            else:
                ws.notes.pop(_cell(a1), None)

    def set_cell(self, key: str, worksheet: str, a1: str, text: str) -> None:
        """A person edits a cell's text in the browser (its note stays)."""
        row, col = _cell(a1)
        with self._lock:
            ws = self._worksheet(key, worksheet)
            while len(ws.rows) < row:
                ws.rows.append([])
            cells = ws.rows[row - 1]
            cells.extend([""] * (col - len(cells)))
            cells[col - 1] = text

    def batch_updates(self, key: str, *, applied_only: bool = True) -> list[Mapping[str, Any]]:
        """The batchUpdate bodies received for a spreadsheet, in order (by default only those applied)."""
        with self._lock:
            return [b.body for b in self._batch_updates if b.key == key and (b.applied or not applied_only)]

    def _worksheet(self, key: str, title: str) -> _Worksheet:
        return next(ws for ws in self._spreadsheets[key].worksheets if ws.title == title)

    def trust_service_account(self, client_email: str, public_key_pem: bytes) -> None:
        """Check the signature of JWT grants from this account (without it, any well-formed grant is accepted)."""
        key = serialization.load_pem_public_key(public_key_pem)
        if not isinstance(key, rsa.RSAPublicKey):
            raise TypeError("service-account keys are RSA keys")
        with self._lock:
            self._trusted_keys[client_email] = key

    # --- fault injection -------------------------------------------------------------------------------------

    def _queue(self, kind: str, fault: _Fault, times: int) -> None:
        if times < 1:
            raise ValueError(f"times must be >= 1, got {times}")
        if kind not in FAULT_KINDS:  # a typo would otherwise queue a fault that never fires
            raise ValueError(f"unknown path kind {kind!r}; one of {sorted(FAULT_KINDS)}")
        with self._lock:
            self._faults[kind].extend([fault] * times)

    def fail_next(
        self,
        kind: str,
        status: int,
        *,
        retry_after: float | str | None = None,
        times: int = 1,
        body: bytes | None = None,
    ) -> None:
        """The next `times` requests of `kind` answer `status` (with Retry-After seconds or an HTTP date)."""
        header = None if retry_after is None else str(retry_after)
        self._queue(kind, _Fault("status", status=status, retry_after=header, body=body), times)

    def slow(self, seconds: float, *, kind: str = "values", times: int = 1) -> None:
        """The next `times` requests of `kind` wait `seconds` before answering (normally)."""
        self._queue(kind, _Fault("slow", seconds=seconds), times)

    def drop_connection(self, times: int = 1, *, kind: str = "values") -> None:
        """The next `times` requests of `kind` are read and the socket closed without an answer."""
        self._queue(kind, _Fault("drop"), times)

    def garbage(self, times: int = 1, *, kind: str = "values") -> None:
        """The next `times` requests of `kind` answer 200 with an HTML page instead of JSON."""
        self._queue(kind, _Fault("garbage"), times)

    def truncate(self, times: int = 1, *, kind: str = "values") -> None:
        """The next `times` requests of `kind` announce the full Content-Length but send half the body, then close."""
        self._queue(kind, _Fault("truncate"), times)

    def partial(self, times: int = 1, *, kind: str = "values") -> None:
        """The next `times` values answers cover only the first half of the grid's rows (a well-formed short read)."""
        self._queue(kind, _Fault("partial"), times)

    def clear_faults(self, kind: str | None = None) -> None:
        """Drop the queued faults (of one path kind, or all) that no request has taken yet."""
        with self._lock:
            if kind is None:
                self._faults.clear()
            else:
                self._faults.pop(kind, None)

    def reset(self) -> None:
        """Forget queued faults, the request log and issued tokens; keep the spreadsheets."""
        with self._lock:
            self._faults.clear()
            self._requests.clear()
            self._tokens.clear()
            self._batch_updates.clear()
            self.token_claims.clear()

    # --- inspection ------------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def count(self, kind: str) -> int:
        return sum(1 for r in self.requests if r.kind == kind)

    def pending_faults(self, kind: str) -> int:
        with self._lock:
            return len(self._faults.get(kind, ()))

    # --- request handling (called from the server threads) ---------------------------------------------------

    def _take_fault(self, kind: str) -> _Fault | None:
        with self._lock:
            queue = self._faults.get(kind)
            return queue.popleft() if queue else None

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _is_authorized(self, header: str | None) -> bool:
        return self._scopes_of(header) is not None

    def _scopes_of(self, header: str | None) -> frozenset[str] | None:
        """The scopes of the request's access token; None when it carries no token this emulator granted."""
        if not header or not header.startswith("Bearer "):
            return None
        with self._lock:
            return self._tokens.get(header.removeprefix("Bearer ").strip())

    def _sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _grant_token(self, form: Mapping[str, list[str]]) -> _Answer:
        if form.get("grant_type", [""])[0] != JWT_BEARER_GRANT:
            return _oauth_error(400, "unsupported_grant_type", "Invalid grant_type.")
        assertion = form.get("assertion", [""])[0]
        parts = assertion.split(".")
        try:
            if len(parts) != 3:
                raise ValueError("not a JWT")
            header = json.loads(_b64url_decode(parts[0]))
            claims = json.loads(_b64url_decode(parts[1]))
            signature = _b64url_decode(parts[2])
        except (ValueError, binascii.Error):
            return _oauth_error(400, "invalid_grant", "Invalid JWT: malformed assertion.")
        if header.get("alg") != "RS256":
            return _oauth_error(400, "invalid_grant", "Invalid JWT: only RS256 is accepted.")
        if claims.get("aud") not in {GOOGLE_TOKEN_AUDIENCE, self.token_uri}:
            return _oauth_error(400, "invalid_grant", "Invalid JWT: audience is not this token endpoint.")
        if not isinstance(claims.get("exp"), int) or claims["exp"] < time.time():
            return _oauth_error(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token.")
        if not claims.get("scope"):
            return _oauth_error(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        with self._lock:
            trusted = self._trusted_keys.get(str(claims.get("iss")))
            any_trusted = bool(self._trusted_keys)
        if any_trusted:
            if trusted is None:
                return _oauth_error(400, "invalid_grant", "Invalid grant: account not found")
            try:
                signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
                trusted.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
            except InvalidSignature:
                return _oauth_error(400, "invalid_grant", "Invalid JWT Signature.")
        token = "ya29.emulated-" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = frozenset(str(claims["scope"]).split())
            self.token_claims.append(claims)
        return _json_answer(200, {"access_token": token, "expires_in": TOKEN_LIFETIME_SECONDS, "token_type": "Bearer"})

    def _spreadsheet(self, key: str) -> _Spreadsheet | _Answer:
        with self._lock:
            spreadsheet = self._spreadsheets.get(key)
        if spreadsheet is None:
            return _google_error(404)
        if not spreadsheet.shared:
            return _google_error(403)
        return spreadsheet

    def _metadata(self, key: str, query: Mapping[str, list[str]]) -> _Answer:
        """spreadsheets.get: the properties of every worksheet; with a field mask naming `sheets.data` (or
        includeGridData=true and no mask) also their grid data — cells' formattedValue and note — for the `ranges`
        asked (each range one GridData; without ranges, each worksheet whole). The mask then filters the answer."""
        found = self._spreadsheet(key)
        if isinstance(found, _Answer):
            return found
        fields = query.get("fields", [""])[0]
        try:
            mask = _parse_mask(fields) if fields else None
        except _MaskError as exc:
            return _google_error(400, str(exc))
        grid = _wants_grid(mask) if mask is not None else query.get("includeGridData", ["false"])[0].lower() == "true"
        windows: dict[int, list[tuple[int, int, int, int]]] = {}
        try:
            for a1_range in query.get("ranges", []):
                worksheet, window = self._resolve_range(found, a1_range)
                windows.setdefault(worksheet.sheet_id, []).append(window)
        except _RangeError as exc:
            return _google_error(400, str(exc))
        sheets = []
        with self._lock:
            for index, ws in enumerate(found.worksheets):
                if windows and ws.sheet_id not in windows:
                    continue  # Google answers only the sheets the ranges name
                entry: dict[str, Any] = {
                    "properties": {
                        "sheetId": ws.sheet_id,
                        "title": ws.title,
                        "index": index,
                        "sheetType": "GRID",
                        "gridProperties": {"rowCount": ws.row_count, "columnCount": ws.column_count},
                    }
                }
                if grid:
                    whole = [(1, 1, ws.row_count, ws.column_count)]
                    entry["data"] = [_grid_data(ws, window) for window in windows.get(ws.sheet_id, whole)]
                sheets.append(entry)
        answer = {
            "spreadsheetId": key,
            "properties": {"title": found.title, "locale": "ja_JP", "timeZone": "Asia/Tokyo"},
            "sheets": sheets,
            "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{key}/edit",
        }
        masked = _masked(answer, mask)
        for sheet in masked.get("sheets") or []:  # Google trims the grid after masking: cells, then rows
            for data in sheet.get("data") or []:
                _trim_grid(data)
        return _json_answer(200, masked)

    def _batch_update(self, key: str, body: bytes, scopes: frozenset[str]) -> _Answer:
        """spreadsheets.batchUpdate, recorded whether applied or refused."""
        answer, parsed = self._batch_update_answer(key, body, scopes)
        with self._lock:
            self._batch_updates.append(ReceivedBatchUpdate(key, parsed, applied=answer.status == 200))
        return answer

    def _batch_update_answer(self, key: str, body: bytes, scopes: frozenset[str]) -> tuple[_Answer, Mapping[str, Any]]:
        """Every request checked first, then all applied under the lock or none (batchUpdate is atomic). Only
        updateCells of the `note` field is emulated; other known request kinds answer 400 "not emulated"."""
        try:
            parsed = json.loads(body or b"{}")
        except ValueError:
            return _google_error(400, "Invalid JSON payload received."), {}
        found = self._spreadsheet(key)
        if isinstance(found, _Answer):
            return found, parsed
        if not scopes & WRITE_SCOPES:
            return _google_error(403, "Request had insufficient authentication scopes."), parsed
        if not found.editable:
            return _google_error(403), parsed
        requests = parsed.get("requests") if isinstance(parsed, dict) else None
        if not isinstance(requests, list):
            return _google_error(400, "Invalid JSON payload received. 'requests' must be a list."), parsed
        planned: list[tuple[_Worksheet, tuple[int, int], str]] = []
        for i, request in enumerate(requests):
            try:
                planned += self._note_cells(found, i, request)
            except _RangeError as exc:
                return _google_error(400, str(exc)), parsed
        with self._lock:
            for ws, cell, note in planned:
                if note:
                    ws.notes[cell] = note
                else:
                    ws.notes.pop(cell, None)
        return _json_answer(200, {"spreadsheetId": key, "replies": [{} for _ in requests]}), parsed

    @staticmethod
    def _note_cells(spreadsheet: _Spreadsheet, i: int, request: Any) -> list[tuple[_Worksheet, tuple[int, int], str]]:
        """The (worksheet, cell, note) an updateCells request sets; a range's cells its rows leave out are cleared,
        as Google clears the `fields` of a range's uncovered cells."""
        if not isinstance(request, dict) or len(request) != 1:
            raise _RangeError(f"Invalid requests[{i}]: a request must hold exactly one kind")
        ((kind, spec),) = request.items()
        if kind not in _KNOWN_REQUESTS:
            raise _RangeError(
                f"Invalid JSON payload received. Unknown name \"{kind}\" at 'requests[{i}]': Cannot find field."
            )
        if kind != "updateCells":
            raise _RangeError(f"requests[{i}].{kind} is not emulated (only updateCells of notes)")
        if spec.get("fields") != "note":
            raise _RangeError(f"requests[{i}].updateCells with fields {spec.get('fields')!r} is not emulated")
        by_id = {ws.sheet_id: ws for ws in spreadsheet.worksheets}
        where = spec.get("range") or spec.get("start")
        if not isinstance(where, dict):
            raise _RangeError(f"Invalid requests[{i}].updateCells: one of range or start is required")
        ws = by_id.get(where.get("sheetId", 0))
        if ws is None:
            raise _RangeError(f"Invalid requests[{i}].updateCells: No grid with id: {where.get('sheetId', 0)}")
        rows = spec.get("rows") or []
        if "range" in spec:
            r0, r1 = where.get("startRowIndex", 0), where.get("endRowIndex", ws.row_count)
            c0, c1 = where.get("startColumnIndex", 0), where.get("endColumnIndex", ws.column_count)
        else:
            r0, c0 = where.get("rowIndex", 0), where.get("columnIndex", 0)
            r1 = r0 + len(rows)
            c1 = c0 + max((len(row.get("values") or []) for row in rows), default=0)
        if not (0 <= r0 <= r1 <= ws.row_count and 0 <= c0 <= c1 <= ws.column_count):
            raise _RangeError(
                f"Invalid requests[{i}].updateCells: the range is outside the grid of {ws.title!r} "
                f"({ws.row_count} rows, {ws.column_count} columns)"
            )
        if len(rows) > r1 - r0 or any(len(row.get("values") or []) > c1 - c0 for row in rows):
            raise _RangeError(f"Invalid requests[{i}].updateCells: Attempting to write beyond the range")
        cells = []
        for r in range(r0, r1):
            values = (rows[r - r0].get("values") or []) if r - r0 < len(rows) else []
            for c in range(c0, c1):
                data = values[c - c0] if c - c0 < len(values) else {}
                note = data.get("note", "") if isinstance(data, dict) else ""
                cells.append((ws, (r + 1, c + 1), str(note)))
        return cells

    def _value_range(
        self, spreadsheet: _Spreadsheet, a1_range: str, query: Mapping[str, list[str]], partial: bool = False
    ) -> dict[str, Any]:
        """One ValueRange: the requested window, trimmed like Google, under the range of the whole window."""
        worksheet, (r1, c1, r2, c2) = self._resolve_range(spreadsheet, a1_range)
        render = query.get("valueRenderOption", ["FORMATTED_VALUE"])[0]
        if render not in {"FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA"}:
            raise _RangeError(f"Invalid value at 'value_render_option' ({render})")
        dimension = query.get("majorDimension", ["ROWS"])[0]
        if dimension not in {"ROWS", "COLUMNS"}:
            raise _RangeError(f"Invalid value at 'major_dimension' ({dimension})")
        if partial:  # a short read that still looks well formed: only the first half of the rows, range to match
            r2 = max(r1, r1 + (r2 - r1) // 2)
        # Cells hold displayed text, so all three render options answer the same strings.
        window = [
            [row[c] if c < len(row) else "" for c in range(c1 - 1, c2)]
            for row in (worksheet.rows[r - 1] if r <= len(worksheet.rows) else [] for r in range(r1, r2 + 1))
        ]
        if dimension == "COLUMNS":
            window = [list(column) for column in zip(*window, strict=True)] if window else []
        answer: dict[str, Any] = {
            "range": f"{_quote_title(worksheet.title)}!{_column_letters(c1)}{r1}:{_column_letters(c2)}{r2}",
            "majorDimension": dimension,
        }
        values = _trim(window)
        if values:  # Google leaves "values" out of an empty range's answer
            answer["values"] = values
        return answer

    def _resolve_range(self, spreadsheet: _Spreadsheet, a1_range: str) -> tuple[_Worksheet, tuple[int, int, int, int]]:
        by_title = {ws.title: ws for ws in spreadsheet.worksheets}
        title: str | None
        if a1_range.startswith("'"):
            match = re.match(r"'((?:[^']|'')*)'(?:!(.*))?$", a1_range, re.DOTALL)
            if match is None:
                raise _RangeError(f"Unable to parse range: {a1_range}")
            title, cells = match.group(1).replace("''", "'"), match.group(2) or ""
        elif "!" in a1_range:
            title, _, cells = a1_range.partition("!")
        elif a1_range in by_title:
            title, cells = a1_range, ""
        else:  # a bare A1 range refers to the first worksheet
            title, cells = spreadsheet.worksheets[0].title, a1_range
        worksheet = by_title.get(title)
        if worksheet is None:
            raise _RangeError(f"Unable to parse range: {a1_range}")
        if not cells:
            return worksheet, (1, 1, worksheet.row_count, worksheet.column_count)
        start, colon, end = cells.partition(":")
        r1, c1 = self._bound(start, a1_range)
        r2, c2 = self._bound(end, a1_range) if colon else (r1, c1)
        first_row, first_col = r1 or 1, c1 or 1
        last_row = r2 or (worksheet.row_count if colon else first_row)
        last_col = c2 or (worksheet.column_count if colon else first_col)
        if last_row > worksheet.row_count or last_col > worksheet.column_count:
            raise _RangeError(
                f"Range ({_quote_title(title)}!{cells}) exceeds grid limits. Max rows: {worksheet.row_count}, "
                f"max columns: {worksheet.column_count}"
            )
        if first_row > last_row or first_col > last_col:
            first_row, last_row = min(first_row, last_row), max(first_row, last_row)
            first_col, last_col = min(first_col, last_col), max(first_col, last_col)
        return worksheet, (first_row, first_col, last_row, last_col)

    @staticmethod
    def _bound(text: str, whole: str) -> tuple[int | None, int | None]:
        match = _A1_BOUND_RE.fullmatch(text)
        if match is None or not text:
            raise _RangeError(f"Unable to parse range: {whole}")
        letters, digits = match.groups()
        return (int(digits) if digits else None, _column_number(letters) if letters else None)

    def _values(self, key: str, a1_range: str, query: Mapping[str, list[str]], partial: bool) -> _Answer:
        found = self._spreadsheet(key)
        if isinstance(found, _Answer):
            return found
        try:
            return _json_answer(200, self._value_range(found, a1_range, query, partial))
        except _RangeError as exc:
            return _google_error(400, str(exc))

    def _batch_get(self, key: str, query: Mapping[str, list[str]]) -> _Answer:
        found = self._spreadsheet(key)
        if isinstance(found, _Answer):
            return found
        try:
            ranges = [self._value_range(found, r, query) for r in query.get("ranges", [])]
        except _RangeError as exc:
            return _google_error(400, str(exc))
        return _json_answer(200, {"spreadsheetId": key, "valueRanges": ranges})

    def _drive_file(self, spreadsheet: _Spreadsheet) -> dict[str, str]:
        return {
            "kind": "drive#file",
            "id": spreadsheet.key,
            "name": spreadsheet.title,
            "mimeType": SHEETS_MIME_TYPE,
            "createdTime": FIXED_TIME,
            "modifiedTime": FIXED_TIME,
        }

    def _drive_files(self, query: Mapping[str, list[str]]) -> _Answer:
        q = query.get("q", [""])[0]
        name = _DRIVE_NAME_RE.search(q)
        with self._lock:
            # A service account sees only the files shared with it.
            files = [
                self._drive_file(s)
                for s in self._spreadsheets.values()
                if s.shared and (name is None or s.title == name.group(1))
            ]
        try:
            size = int(query.get("pageSize", [str(DEFAULT_DRIVE_PAGE_SIZE)])[0])
            offset = int(query.get("pageToken", ["0"])[0] or 0)
        except ValueError:
            return _google_error(400, "Invalid pageSize or pageToken")
        page: dict[str, Any] = {
            "kind": "drive#fileList",
            "incompleteSearch": False,
            "files": files[offset : offset + size],
        }
        if offset + size < len(files):
            page["nextPageToken"] = str(offset + size)
        return _json_answer(200, page)

    def _drive_file_get(self, key: str) -> _Answer:
        found = self._spreadsheet(key)
        return found if isinstance(found, _Answer) else _json_answer(200, self._drive_file(found))


def _classify(method: str, segments: list[str], query: Mapping[str, list[str]]) -> PathKind:
    if method == "POST" and segments == ["token"]:
        return "token"
    if (
        method == "POST"
        and len(segments) == 3
        and segments[:2] == ["v4", "spreadsheets"]
        and segments[2].endswith(":batchUpdate")
    ):
        return "batch_update"
    if method == "GET" and segments[:2] == ["v4", "spreadsheets"]:
        if len(segments) == 3:
            fields = query.get("fields", [""])[0]
            try:
                grid = _wants_grid(_parse_mask(fields)) if fields else None
            except _MaskError:
                grid = False
            if grid is None:
                grid = query.get("includeGridData", ["false"])[0].lower() == "true"
            return "grid_data" if grid else "metadata"
        if len(segments) == 4 and segments[3] == "values:batchGet":
            return "batch_get"
        if len(segments) == 5 and segments[3] == "values":
            return "values"
    if method == "GET" and segments[:3] == ["drive", "v3", "files"]:
        if len(segments) == 3:
            return "drive_files"
        if len(segments) == 4:
            return "drive_file"
    return "unknown"


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler stuck in a `slow` fault must not keep the test process alive
    emulator: SheetsEmulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout) closes its socket; writing to it then fails. That is expected here.
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like Google: a dropped connection then really is a surprise
    disable_nagle_algorithm = True  # headers and body go out in two writes; Nagle would hold the body back 40 ms
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log is `emulator.requests`; stderr noise would hide test output

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        emulator = self.server.emulator
        split = urlsplit(self.path)
        segments = [unquote(s) for s in split.path.split("/")[1:]]  # split first: a title may hold an encoded '/'
        query = parse_qs(split.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        kind = _classify(method, segments, query)
        fault = emulator._take_fault(kind)
        record = RecordedRequest(
            method=method,
            path=unquote(split.path),
            kind=kind,
            query=query,
            authorized=emulator._is_authorized(self.headers.get("Authorization")),
            fault=fault.action if fault else None,
        )
        emulator._record(record)

        if fault is not None and fault.action == "slow":
            emulator._sleep(fault.seconds)
        if fault is not None and fault.action == "drop":
            self.close_connection = True  # the socket closes with nothing written: "connection aborted"
            return
        if fault is not None and fault.action == "status":
            answer = _fault_answer(kind, fault)
        elif fault is not None and fault.action == "garbage":
            answer = _Answer(200, _GARBAGE_BODY, content_type="text/html; charset=UTF-8")
        else:
            answer = self._route(kind, segments, query, body, record.authorized, fault)
        record.status = answer.status
        self._write(answer, truncate=fault is not None and fault.action == "truncate")

    def _route(
        self,
        kind: PathKind,
        segments: list[str],
        query: Mapping[str, list[str]],
        body: bytes,
        authorized: bool,
        fault: _Fault | None,
    ) -> _Answer:
        emulator = self.server.emulator
        if kind == "token":
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            return emulator._grant_token(form)
        if kind == "unknown":
            return _google_error(404, f"Method not found: {self.command} {self.path}")
        if not authorized:
            return _google_error(401)
        handlers: dict[str, Callable[[], _Answer]] = {
            "metadata": lambda: emulator._metadata(segments[2], query),
            "grid_data": lambda: emulator._metadata(segments[2], query),
            "batch_update": lambda: emulator._batch_update(
                segments[2].removesuffix(":batchUpdate"),
                body,
                emulator._scopes_of(self.headers.get("Authorization")) or frozenset(),
            ),
            "values": lambda: emulator._values(
                segments[2], segments[4], query, partial=fault is not None and fault.action == "partial"
            ),
            "batch_get": lambda: emulator._batch_get(segments[2], query),
            "drive_files": lambda: emulator._drive_files(query),
            "drive_file": lambda: emulator._drive_file_get(segments[3]),
        }
        return handlers[kind]()

    def _write(self, answer: _Answer, *, truncate: bool) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if truncate:
            self.send_header("Connection", "close")
        self.end_headers()
        if truncate:  # the announced length, half the bytes, then the connection ends
            self.wfile.write(answer.body[: len(answer.body) // 2])
            self.close_connection = True
            return
        self.wfile.write(answer.body)


def _fault_answer(kind: PathKind, fault: _Fault) -> _Answer:
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    if fault.body is not None:
        return _Answer(fault.status, fault.body, headers=headers)
    if kind == "token":
        error = "temporarily_unavailable" if fault.status >= 500 else "invalid_grant"
        base = _oauth_error(fault.status, error, f"emulated HTTP {fault.status}")
    else:
        base = _google_error(fault.status)
    return _Answer(base.status, base.body, base.content_type, {**base.headers, **headers})
