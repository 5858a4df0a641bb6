"""The re-scoring manifest: CSV or JSON Lines with ``golden``, ``unit``, optional ``spec``, ``id``.

Relative paths are read from the manifest's own directory, so a manifest that travels with its
photos (or a job resumed from another working directory) still finds them. ``golden`` may also
name a golden sealed in the HTTP service (its id); see :mod:`service.rescore.job`.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

__all__ = ["REQUIRED_COLUMNS", "ManifestError", "ManifestItem", "read_manifest", "resolve"]

REQUIRED_COLUMNS = ("golden", "unit")
OPTIONAL_COLUMNS = ("spec", "id")


class ManifestError(ValueError):
    """A manifest the job cannot start from; the one-line message says what to fix."""


@dataclasses.dataclass(frozen=True)
class ManifestItem:
    """One golden/unit pair to score, as the manifest wrote it."""

    id: str  # the manifest's id, or the row number
    row: int  # 1-based position among the manifest's items (a CSV header is not counted)
    golden: str  # a path, or the id of a stored golden
    unit: str  # a path
    spec: str | None  # a path to a spec sheet (JSON or YAML)


def _is_json_lines(path: Path, text: str) -> bool:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return True
    if suffix == ".csv":
        return False
    return text.lstrip().startswith("{")


def _records(path: Path, text: str) -> list[dict]:
    if _is_json_lines(path, text):
        records = []
        for line_number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ManifestError(f"{path}: line {line_number} is not JSON ({exc.msg}); a JSON "
                                    "Lines manifest holds one object per line") from None
            if not isinstance(record, dict):
                raise ManifestError(f"{path}: line {line_number} is not a JSON object; write "
                                    'one object per line, e.g. {"golden": "g.jpg", "unit": '
                                    '"u.jpg"}')
            records.append(record)
        missing = {c for r in records for c in REQUIRED_COLUMNS if c not in r}
        if missing:
            rows = [str(i) for i, r in enumerate(records, start=1)
                    if any(c not in r for c in REQUIRED_COLUMNS)]
            raise ManifestError(f"{path}: missing key(s) {', '.join(sorted(missing))} in "
                                f"item(s) {_some(rows)}; every item needs 'golden' and 'unit'")
        return records
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip() for c in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ManifestError(f"{path}: missing column(s) {', '.join(missing)} (its header has "
                            f"{', '.join(columns) or 'nothing'}); the first row must name the "
                            "columns golden, unit and optionally spec, id")
    return [{(k or "").strip(): v for k, v in row.items()} for row in reader]


def _some(values: list[str], limit: int = 10) -> str:
    shown = ", ".join(values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def read_manifest(path: str | Path) -> list[ManifestItem]:
    """Read and check a manifest; :class:`ManifestError` names the rows that are wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM from a spreadsheet is not a column
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such manifest file") from None
    except IsADirectoryError:
        raise ManifestError(f"{path}: is a directory, not a manifest file") from None
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: not a text file; a manifest is CSV or JSON Lines in "
                            "UTF-8") from None
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read the manifest ({exc.strerror})") from None
    records = _records(path, text)
    items, empty = [], []
    for row, record in enumerate(records, start=1):
        golden, unit = _text(record.get("golden")), _text(record.get("unit"))
        if golden is None or unit is None:
            empty.append(str(row))
            continue
        items.append(ManifestItem(id=_text(record.get("id")) or str(row), row=row,
                                  golden=golden, unit=unit, spec=_text(record.get("spec"))))
    if empty:
        raise ManifestError(f"{path}: empty golden or unit in row(s) {_some(empty)}; fill them "
                            "in or remove those rows")
    rows_by_id: dict[str, list[str]] = {}
    for item in items:
        rows_by_id.setdefault(item.id, []).append(str(item.row))
    duplicates = [f"'{i}' (rows {', '.join(rows)})" for i, rows in rows_by_id.items()
                  if len(rows) > 1]
    if duplicates:
        raise ManifestError(f"{path}: duplicate id(s) {_some(duplicates, 5)}; every item needs "
                            "its own id (or leave the id column out to use row numbers)")
    return items


def resolve(base: Path, value: str) -> Path:
    """A manifest path, relative ones read from the manifest's directory."""
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else base / candidate
