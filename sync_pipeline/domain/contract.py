"""The sheet contract: which columns a sheet has, their kinds and rules, loaded once from YAML into frozen dataclasses.

The bundled default is the eleven built-in fields of `domain.fields` (nothing else), so a sync without a contract
file behaves, rejects and hashes exactly as before contracts existed. A contract file either lists every field or
starts with `extends: default` and lists only what it adds or changes. The eleven built-in names keep their own
database columns (and their kinds); every other field is stored in `sellers.attributes` under its name.

How the contract and the settings combine (one source of truth per rule, `effective`):
- required: a field is required when the contract says `required: true` **or** the setting `required_fields` names it;
  a field the setting names that the contract lacks is refused (a sync could never satisfy it). The key is always
  required.
- the seller-number format: the key field's `pattern` when the contract gives one, else the setting
  `seller_number_pattern`; a contract pattern beside a setting changed to another pattern is refused (two rules for
  one thing).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from sync_pipeline.domain.fields import (
    DEFAULT_SELLER_NUMBER_PATTERN,
    FIELD_BY_NAME,
    FIELDS,
    KEY_FIELD,
    FieldKind,
)
from sync_pipeline.domain.kinds import choice_key

DEFAULT_SOURCE: Final = "default"  # `extends: default`, and the contract's `source` when no file is given
UNMAPPED: Final = "_unmapped"  # the attributes key under which `unmapped_columns = keep` stores other columns
# A field name is a database-friendly identifier: it becomes a JSON key of `sellers.attributes` and a SQL bound
# path; lower case so that `Rank` and `rank` cannot be two fields.
FIELD_NAME: Final = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# Names the sync's own columns use: a field so named would shadow them in the valid frame.
RESERVED_NAMES: Final = frozenset({"sheet_row", "row_hash", "attributes", "id", "version", "synced_version"})
TOP_LEVEL_KEYS: Final = frozenset({"extends", "fields"})
FIELD_KEYS: Final = frozenset({"name", "header", "aliases", "kind", "required", "values", "pattern"})
_LINE: Final = "__line__"  # where the loader notes the line of each mapping


class ContractError(ValueError):
    """A contract that cannot be used: every problem, each naming the field (and line) it is about."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        listed = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"sheet contract {source} cannot be used:\n{listed}")


@dataclass(frozen=True)
class ContractField:
    """One column of the sheet as the contract names it. Same shape as `FieldSpec` where they overlap."""

    name: str
    header: str
    aliases: tuple[str, ...] = ()
    kind: FieldKind = FieldKind.TEXT
    required: bool = False
    values: tuple[str, ...] = ()  # choice: the allowed values, as they are stored
    pattern: str | None = None  # key: the seller-number format (else the setting seller_number_pattern)

    @property
    def builtin(self) -> bool:
        """A built-in field: it has a column of its own in `sellers` or `properties`."""
        return self.name in FIELD_BY_NAME


@dataclass(frozen=True)
class SheetContract:
    """The fields a sheet is read with, in the order the contract lists them."""

    fields: tuple[ContractField, ...]
    source: str = DEFAULT_SOURCE  # the file it was loaded from, or "default"

    @functools.cached_property
    def by_name(self) -> Mapping[str, ContractField]:
        return {f.name: f for f in self.fields}

    @functools.cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @functools.cached_property
    def extras(self) -> tuple[str, ...]:
        """The fields stored in `sellers.attributes`, sorted by name (the order of the content hash)."""
        return tuple(sorted(f.name for f in self.fields if not f.builtin))

    @functools.cached_property
    def alias_index(self) -> Mapping[str, str]:
        """Normalised header text → field name, over every field's name, header and aliases."""
        index, problems = _alias_index(self.fields)
        if problems:  # a contract built in code that skipped `check_contract`: a programming error
            raise ContractError(self.source, [message for _, message in problems])
        return index

    def field(self, name: str) -> ContractField:
        return self.by_name[name]

    @property
    def key(self) -> ContractField:
        return self.by_name[KEY_FIELD]

    @property
    def is_default(self) -> bool:
        return self.fields == default_contract().fields

    def kind_of(self, name: str) -> FieldKind:
        return self.by_name[name].kind


@dataclass(frozen=True)
class EffectiveRules:
    """The contract combined with the settings that overlap it (see the module docstring)."""

    required_fields: tuple[str, ...]
    seller_number_pattern: str
    problems: tuple[str, ...] = field(default_factory=tuple)


def effective(contract: SheetContract, required_fields: Sequence[str], seller_number_pattern: str) -> EffectiveRules:
    """The required fields and key format in force under `contract` and these settings, with what cannot work."""
    problems: list[str] = []
    lacking = [name for name in required_fields if name not in contract.by_name]
    if lacking:
        problems.append(
            f"the setting required_fields names {', '.join(lacking)}, which the contract {contract.source} has no "
            "field for: add the field to the contract, or remove it from required_fields "
            "(sync-pipeline settings set required_fields=…)"
        )
    required = [KEY_FIELD]
    for f in contract.fields:
        if (f.required or f.name in required_fields) and f.name not in required:
            required.append(f.name)
    pattern = seller_number_pattern
    key_pattern = contract.key.pattern if KEY_FIELD in contract.by_name else None
    if key_pattern is not None:
        if seller_number_pattern not in (DEFAULT_SELLER_NUMBER_PATTERN, key_pattern):
            problems.append(
                f"the seller-number format is set twice: pattern {key_pattern} in the contract {contract.source} and "
                f"the setting seller_number_pattern={seller_number_pattern}; keep one (remove the contract's pattern, "
                f"or set seller_number_pattern back to {DEFAULT_SELLER_NUMBER_PATTERN})"
            )
        pattern = key_pattern
    return EffectiveRules(tuple(required), pattern, tuple(problems))


# --- the bundled default --------------------------------------------------------------------------------------


@functools.cache
def default_contract() -> SheetContract:
    """The eleven built-in fields. None says `required`: under the default contract the setting `required_fields`
    alone decides (seller_number, name, property_address unless changed), exactly as before contracts existed."""
    return SheetContract(
        tuple(ContractField(spec.name, spec.header, spec.aliases, spec.kind) for spec in FIELDS),
        DEFAULT_SOURCE,
    )


# --- loading and checking -------------------------------------------------------------------------------------


class _LineLoader(yaml.SafeLoader):
    """A safe loader that notes, in each mapping, the line it starts on (for messages)."""


def _mapping_with_line(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping[_LINE] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_line)


def parse_contract(text: str, source: str) -> SheetContract:
    """The contract written in `text` (YAML), or ContractError listing every problem with its field and line."""
    try:
        document = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ContractError(source, [f"{where}the file is not valid YAML ({problem})"]) from None
    if not isinstance(document, dict):
        raise ContractError(source, ["the file must be a mapping with a top-level `fields:` list"])
    problems: list[str] = []
    unknown = sorted(str(k) for k in document if k != _LINE and k not in TOP_LEVEL_KEYS)
    if unknown:
        problems.append(f"unknown top-level keys {', '.join(unknown)}; a contract has `extends` and `fields`")
    extends = document.get("extends")
    if extends is not None and extends != DEFAULT_SOURCE:
        problems.append(f"extends: {extends!r} is unknown; the only contract to extend is {DEFAULT_SOURCE!r}")
    entries = document.get("fields")
    if not isinstance(entries, list) or not entries:
        problems.append("`fields:` must be a non-empty list of fields (name, header, kind, …)")
        raise ContractError(source, problems)
    declared: list[ContractField] = []
    seen: dict[str, int] = {}
    for position, entry in enumerate(entries, start=1):
        parsed = _parse_field(entry, position, problems)
        if parsed is None:
            continue
        line = entry.get(_LINE, "?") if isinstance(entry, dict) else "?"
        if parsed.name in seen:
            problems.append(f"line {line}: field {parsed.name!r} is listed twice (also on line {seen[parsed.name]})")
            continue
        seen[parsed.name] = line  # type: ignore[assignment]
        declared.append(parsed)
    fields = _extend(declared) if extends == DEFAULT_SOURCE else tuple(declared)
    contract = SheetContract(fields, source)
    problems.extend(check_contract(contract, lines=seen))
    if problems:
        raise ContractError(source, problems)
    return contract


def _parse_field(entry: object, position: int, problems: list[str]) -> ContractField | None:
    if not isinstance(entry, dict):
        problems.append(f"field {position} of `fields:` must be a mapping with name, header and kind")
        return None
    line = entry.get(_LINE, "?")
    name = entry.get("name")
    if not isinstance(name, str) or not FIELD_NAME.match(name):
        problems.append(
            f"line {line}: field {position} has name {name!r}; a name is lower-case letters, digits and _ "
            "starting with a letter (like staff or next_contact_date)"
        )
        return None
    where = f"line {line}: field {name!r}"
    before = len(problems)
    unknown = sorted(str(k) for k in entry if k != _LINE and k not in FIELD_KEYS)
    if unknown:
        problems.append(f"{where}: unknown keys {', '.join(unknown)}; a field has {', '.join(sorted(FIELD_KEYS))}")
    if name in RESERVED_NAMES:
        problems.append(f"{where}: the name is used by the sync's own columns; choose another")
    builtin = FIELD_BY_NAME.get(name)
    header = entry.get("header", builtin.header if builtin else None)
    if not isinstance(header, str) or not header.strip():
        problems.append(f"{where}: needs a header (the column's heading in the sheet, like 担当者)")
    aliases = entry.get("aliases", list(builtin.aliases) if builtin else [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
        problems.append(f"{where}: aliases must be a list of header texts")
        aliases = []
    kind_text = entry.get("kind", builtin.kind.value if builtin else None)
    kind: FieldKind | None = None
    kinds = ", ".join(k.value for k in FieldKind)
    if kind_text is None:
        problems.append(f"{where}: needs a kind, one of {kinds}")
    else:
        try:
            kind = FieldKind(str(kind_text))
        except ValueError:
            problems.append(f"{where}: kind {kind_text!r} is unknown; kinds are {kinds}")
    if builtin is not None and kind is not None and kind is not builtin.kind:
        problems.append(
            f"{where}: {name} is a built-in column of kind {builtin.kind.value} and cannot be {kind.value}; keep "
            f"kind {builtin.kind.value}, or give your field another name"
        )
    required = entry.get("required", False)
    if not isinstance(required, bool):
        problems.append(f"{where}: required must be true or false, got {required!r}")
    values = entry.get("values")
    if kind is FieldKind.CHOICE:
        if not isinstance(values, list) or not values or not all(_scalar(v) for v in values):
            problems.append(f"{where}: a choice needs `values:`, the list of allowed values (like [A, B, C])")
            values = []
        else:
            values = [str(v) for v in values]
            folded = [choice_key(v) for v in values]
            twins = sorted({v for v, f in zip(values, folded, strict=True) if folded.count(f) > 1})
            if twins:
                problems.append(f"{where}: values {', '.join(twins)} read alike (width and case are ignored)")
    elif values is not None:
        problems.append(f"{where}: values are for kind choice only")
        values = []
    pattern = entry.get("pattern")
    if pattern is not None:
        if kind is not FieldKind.KEY:
            problems.append(f"{where}: pattern is for the key field only")
        elif not isinstance(pattern, str):
            problems.append(f"{where}: pattern must be a regular expression")
        else:
            try:
                re.compile(pattern)
            except re.error as exc:
                problems.append(f"{where}: pattern is not a valid regular expression ({exc})")
    if len(problems) > before or kind is None:
        return None
    return ContractField(
        name,
        str(header).strip(),
        tuple(a.strip() for a in aliases),
        kind,
        bool(required),
        tuple(values or ()),
        pattern,
    )


def _scalar(value: object) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool) and str(value).strip() != ""


def _extend(declared: Sequence[ContractField]) -> tuple[ContractField, ...]:
    """The default's fields with the declared ones in place of those of the same name, the new ones after them."""
    by_name = {f.name: f for f in declared}
    base = tuple(by_name.pop(f.name, f) for f in default_contract().fields)
    return (*base, *by_name.values())


def _alias_index(fields: Sequence[ContractField]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Normalised header → field, and (field, message) for each header or alias that names two fields."""
    from sync_pipeline.domain.headers import normalise_header  # headers reads contracts: imported when first needed

    index: dict[str, str] = {}
    texts: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    for f in fields:
        for text in dict.fromkeys((f.name, f.header, *f.aliases)):
            key = normalise_header(text)
            if not key:
                continue
            owner = index.setdefault(key, f.name)
            if owner != f.name:
                problems.append(
                    (
                        f.name,
                        f"field {f.name!r}: header or alias {text!r} also names field {owner!r} "
                        f"(as {texts[key]!r}); a header must name one field only",
                    )
                )
            texts.setdefault(key, text)
    return index, problems


def check_contract(contract: SheetContract, lines: Mapping[str, int] | None = None) -> list[str]:
    """What makes a contract unusable as a whole: no key or two, headers naming two fields."""
    problems: list[str] = []
    keys = [f.name for f in contract.fields if f.kind is FieldKind.KEY]
    if not keys:
        problems.append(f"no key field: the contract needs the field {KEY_FIELD} of kind key (the seller number)")
    elif len(keys) > 1 or keys[0] != KEY_FIELD:
        others = [k for k in keys if k != KEY_FIELD]
        where = f"line {lines[others[0]]}: " if lines and others and others[0] in lines else ""
        problems.append(
            f"{where}fields {', '.join(keys)} are of kind key; exactly one key field, named {KEY_FIELD}, is allowed "
            "(it is the database's key)"
        )
    _, header_problems = _alias_index(contract.fields)
    for name, message in header_problems:
        problems.append(f"line {lines[name]}: {message}" if lines and name in lines else message)
    return problems


# --- writing a contract back as YAML ----------------------------------------------------------------------------


def contract_yaml(contract: SheetContract, rules: EffectiveRules | None = None) -> str:
    """The contract as a contract file that `parse_contract` reads back to the same fields: what `contract show`
    prints, the way to start your own. With `rules`, `required` and the key's pattern are those in force."""
    lines = [
        f"# Sheet contract in force (from {contract.source}). Every column of the sheet is synced by a field below,",
        "# or handled by the setting unmapped_columns (report | keep | refuse). Kinds: "
        + ", ".join(k.value for k in FieldKind)
        + ".",
        "# Save it, edit it, check it with `sync-pipeline contract check PATH`, use it with SYNC_CONTRACT=PATH.",
        "fields:",
    ]
    required = set(rules.required_fields) if rules is not None else {f.name for f in contract.fields if f.required}
    for f in contract.fields:
        entry: dict[str, Any] = {"name": f.name, "header": f.header}
        if f.aliases:
            entry["aliases"] = list(f.aliases)
        entry["kind"] = f.kind.value
        entry["required"] = f.name in required
        if f.values:
            entry["values"] = list(f.values)
        pattern = rules.seller_number_pattern if rules is not None and f.kind is FieldKind.KEY else f.pattern
        if pattern is not None and f.kind is FieldKind.KEY:
            entry["pattern"] = pattern
        text = yaml.safe_dump([entry], allow_unicode=True, sort_keys=False, default_flow_style=None, width=120)
        lines.append(text.rstrip("\n").replace("\n", "\n  ").join(["  ", ""]))
    return "\n".join(lines) + "\n"
