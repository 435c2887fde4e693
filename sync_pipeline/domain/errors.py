"""Error categories (Requirement 2.3) and the exception that carries one with enough context to act on."""

from __future__ import annotations

import enum


class ErrorCategory(enum.StrEnum):
    NETWORK = "network"
    VALIDATION = "validation"
    DATABASE = "database"
    CONFLICT = "conflict"
    INTEGRITY = "integrity"
    CONFIGURATION = "configuration"
    UNKNOWN = "unknown"


class SyncError(Exception):
    """An error the operator can act on: a category, a message that says what to do, and where it happened."""

    def __init__(
        self,
        category: ErrorCategory,
        message: str,
        *,
        seller_number: str | None = None,
        sheet_row: int | None = None,
        cell: str | None = None,
        transient: bool = False,
    ) -> None:
        super().__init__(message)
        self.category = category
        self.message = message
        self.seller_number = seller_number
        self.sheet_row = sheet_row
        self.cell = cell
        self.transient = transient  # a retry may succeed (network blip, lost connection)


class SheetReadError(SyncError):
    """The sheet could not be read completely: the sync must fail rather than sync a partial sheet."""


class HeaderError(SyncError):
    """The sheet's header row does not map cleanly onto the seller fields: nothing may be written."""


class SyncRefusedError(SyncError):
    """Another sync holds the sync lock: this one was refused before it wrote anything."""


class SheetFeedbackError(SyncError):
    """The sync's notes could not be read from or written into the sheet: reported, never fatal to the sync."""
