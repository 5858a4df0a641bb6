"""AQL sampling plans: ISO 2859-1 single sampling, normal inspection.

Source: ISO 2859-1:1999 "Sampling procedures for inspection by attributes -- Part 1", Table I
(sample size code letters) and Table II-A (single sampling plans for normal inspection); the same
figures are in ANSI/ASQ Z1.4-2008 and MIL-STD-105E. They were typed in from the verified copy in
``shared/reference/iso2859-1-single-normal.md`` and every cell is checked by ``tests/test_aql.py``
(many public copies of these tables are wrong).

The tables are data below, arrows included, so that a reader can compare them with the standard
line by line; :func:`sampling_plan` follows the arrows and applies the 100% rule. An AQL of 0 is
not in the standard's table: inspection firms write "critical 0" for "no critical defect
allowed", which this module reads as the code letter's sample size with Ac 0 / Re 1.

Pure functions, no I/O: the CLI (``sealcheck aql``) and the HTTP API (``POST /v1/lots``) share
them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

__all__ = [
    "AQL_VALUES",
    "DEFAULT_AQL",
    "DEFECT_CLASSES",
    "LEVELS",
    "MAX_LOT_SIZE",
    "AqlError",
    "ClassPlan",
    "LotPlan",
    "code_letter",
    "lot_plan",
    "sampling_plan",
]

LEVELS = ("S-1", "S-2", "S-3", "S-4", "I", "II", "III")
DEFECT_CLASSES = ("critical", "major", "minor")  # most serious first
# The defaults of third-party inspection firms (the reference's last rule).
DEFAULT_AQL: dict[str, float] = {"critical": 0.0, "major": 2.5, "minor": 4.0}
# Table I is open-ended; a lot count beyond this is a typing error, and it must fit the
# database's integer column.
MAX_LOT_SIZE = 100_000_000

# Table I: (largest lot size of the row, code letters for S-1, S-2, S-3, S-4, I, II, III).
# The last row has no upper bound ("500001 and over").
_CODE_LETTERS: tuple[tuple[int | None, str], ...] = (
    (8, "A A A A A A B"),
    (15, "A A A A A B C"),
    (25, "A A B B B C D"),
    (50, "A B B C C D E"),
    (90, "B B C C C E F"),
    (150, "B B C D D F G"),
    (280, "B C D E E G H"),
    (500, "B C D E F H J"),
    (1200, "C C E F G J K"),
    (3200, "C D E G H K L"),
    (10000, "C D F G J L M"),
    (35000, "C D F H K M N"),
    (150000, "D E G J L N P"),
    (500000, "D E G J M P Q"),
    (None, "D E H K N Q R"),
)

# Table II-A, single sampling, normal inspection: code letter, sample size, then Ac/Re for the
# AQLs in AQL_VALUES; "v" = use the first plan below, "^" = the first plan above.
AQL_VALUES: tuple[float, ...] = (0.65, 1.0, 1.5, 2.5, 4.0, 6.5)
_PLANS: tuple[tuple[str, int, str], ...] = (
    ("A", 2, "v     v     v     v     v     0/1"),
    ("B", 3, "v     v     v     v     0/1   ^"),
    ("C", 5, "v     v     v     0/1   ^     v"),
    ("D", 8, "v     v     0/1   ^     v     1/2"),
    ("E", 13, "v     0/1   ^     v     1/2   2/3"),
    ("F", 20, "0/1   ^     v     1/2   2/3   3/4"),
    ("G", 32, "^     v     1/2   2/3   3/4   5/6"),
    ("H", 50, "v     1/2   2/3   3/4   5/6   7/8"),
    ("J", 80, "1/2   2/3   3/4   5/6   7/8   10/11"),
    ("K", 125, "2/3   3/4   5/6   7/8   10/11 14/15"),
    ("L", 200, "3/4   5/6   7/8   10/11 14/15 21/22"),
    ("M", 315, "5/6   7/8   10/11 14/15 21/22 ^"),
    ("N", 500, "7/8   10/11 14/15 21/22 ^     ^"),
    ("P", 800, "10/11 14/15 21/22 ^     ^     ^"),
    ("Q", 1250, "14/15 21/22 ^     ^     ^     ^"),
    ("R", 2000, "21/22 ^     ^     ^     ^     ^"),
)
_LETTERS = tuple(letter for letter, _, _ in _PLANS)
_SAMPLE_SIZE = {letter: n for letter, n, _ in _PLANS}
_CELLS = {letter: dict(zip(AQL_VALUES, cells.split(), strict=True))
          for letter, _, cells in _PLANS}


class AqlError(ValueError):
    """A lot size, level or AQL the tables do not cover; the message says what is allowed."""


@dataclasses.dataclass(frozen=True)
class ClassPlan:
    """The single sampling plan of one defect class."""

    aql: float
    code_letter: str  # the letter whose plan is used, after following arrows
    sample_size: int  # units to inspect: the plan's n, or the lot size under the 100% rule
    ac: int  # accept the lot with at most this many defective units in the sample
    re: int  # reject it as soon as this many are found
    inspect_all: bool  # the plan's n reached the lot size: inspect every unit

    def as_dict(self) -> dict:
        return {"aql": self.aql, "sample_size": self.sample_size, "ac": self.ac, "re": self.re,
                "inspect_all": self.inspect_all, "plan_letter": self.code_letter}


@dataclasses.dataclass(frozen=True)
class LotPlan:
    """A lot's code letter and one plan per defect class."""

    lot_size: int
    level: str
    code_letter: str
    plans: dict[str, ClassPlan]

    @property
    def units_to_inspect(self) -> int:
        """The largest sample of the classes: every class is judged on the first units of it."""
        return max(plan.sample_size for plan in self.plans.values())

    def as_dict(self) -> dict:
        return {"lot_size": self.lot_size, "level": self.level, "code_letter": self.code_letter,
                "plans": {name: plan.as_dict() for name, plan in self.plans.items()}}

    @classmethod
    def from_dict(cls, data: Mapping) -> LotPlan:
        plans = {name: ClassPlan(aql=p["aql"], code_letter=p["plan_letter"],
                                 sample_size=p["sample_size"], ac=p["ac"], re=p["re"],
                                 inspect_all=p["inspect_all"])
                 for name, p in data["plans"].items()}
        return cls(data["lot_size"], data["level"], data["code_letter"], plans)


def _check_lot_size(lot_size: int) -> None:
    if isinstance(lot_size, bool) or not isinstance(lot_size, int):
        raise AqlError(f"lot size must be a whole number of units, got {lot_size!r}")
    if lot_size < 2:
        raise AqlError(f"lot size must be at least 2 units (ISO 2859-1 Table I starts at 2), "
                       f"got {lot_size}")
    if lot_size > MAX_LOT_SIZE:
        raise AqlError(f"lot size must be at most {MAX_LOT_SIZE:,} units; split a larger "
                       "shipment into lots")


def _check_level(level: str) -> str:
    normalised = str(level).strip().upper()
    if normalised not in LEVELS:
        raise AqlError(f"unknown inspection level {level!r}; use one of {', '.join(LEVELS)}")
    return normalised


def code_letter(lot_size: int, level: str = "II") -> str:
    """Table I: the sample size code letter of a lot at an inspection level."""
    _check_lot_size(lot_size)
    column = LEVELS.index(_check_level(level))
    for largest, letters in _CODE_LETTERS:
        if largest is None or lot_size <= largest:
            return letters.split()[column]
    raise AssertionError("unreachable: the last row of Table I is open-ended")


def _table_aql(aql: float) -> float:
    for value in AQL_VALUES:
        if abs(aql - value) < 1e-9:
            return value
    allowed = ", ".join(f"{v:g}" for v in AQL_VALUES)
    raise AqlError(f"AQL {aql:g} is not in the sampling table; use 0 (no defect allowed) or "
                   f"one of {allowed}")


def sampling_plan(lot_size: int, level: str, aql: float) -> ClassPlan:
    """Table II-A: sample size and Ac/Re for one AQL, arrows followed and the 100% rule applied.

    >>> sampling_plan(3000, "II", 2.5)
    ClassPlan(aql=2.5, code_letter='K', sample_size=125, ac=7, re=8, inspect_all=False)
    """
    letter = code_letter(lot_size, level)
    if aql < 0:
        raise AqlError(f"AQL must be 0 or positive, got {aql:g}")
    if aql == 0:
        plan_letter, ac, re = letter, 0, 1
    else:
        column = _table_aql(aql)
        index = _LETTERS.index(letter)
        # An arrow sends us to the first plan below (v) or above (^); its n and Ac/Re apply.
        while (cell := _CELLS[_LETTERS[index]][column]) in ("v", "^"):
            index += 1 if cell == "v" else -1
        plan_letter = _LETTERS[index]
        ac, re = (int(part) for part in cell.split("/"))
    sample_size = _SAMPLE_SIZE[plan_letter]
    inspect_all = sample_size >= lot_size
    return ClassPlan(aql=float(aql), code_letter=plan_letter,
                     sample_size=lot_size if inspect_all else sample_size, ac=ac, re=re,
                     inspect_all=inspect_all)


def lot_plan(lot_size: int, level: str = "II",
             aql: Mapping[str, float] | None = None) -> LotPlan:
    """The plan of a lot: its code letter and a :class:`ClassPlan` per defect class.

    ``aql`` maps defect classes to AQLs; classes left out take :data:`DEFAULT_AQL`.
    """
    level = _check_level(level)
    wanted = dict(DEFAULT_AQL)
    for name, value in (aql or {}).items():
        if name not in DEFECT_CLASSES:
            raise AqlError(f"unknown defect class {name!r}; use {', '.join(DEFECT_CLASSES)}")
        wanted[name] = float(value)
    plans = {name: sampling_plan(lot_size, level, wanted[name]) for name in DEFECT_CLASSES}
    return LotPlan(lot_size=lot_size, level=level, code_letter=code_letter(lot_size, level),
                   plans=plans)
