"""ISO 2859-1 sampling plans against the verified reference tables, cell by cell.

The truth is the workplace's verified copy (shared/reference/iso2859-1-single-normal.md), parsed
here independently of service.aql's own transcription, so a typo in either shows up.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from service.aql import AQL_VALUES, LEVELS, AqlError, code_letter, lot_plan, sampling_plan

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / \
    "iso2859-1-single-normal.md"
SEALCHECK = str(Path(sys.executable).with_name("sealcheck"))


def _table_rows(title: str) -> list[list[str]]:
    if not REFERENCE.exists():
        pytest.skip(f"the verified AQL reference is not at {REFERENCE} (it is in ../shared on "
                    "the workplace's machines and CI)")
    text = REFERENCE.read_text(encoding="utf-8")
    section = text.split(title, 1)[1].split("\n## ", 1)[0]
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in section.splitlines() if line.startswith("|")]
    return [row for row in rows[2:]]  # header and separator dropped


def _reference_letters() -> list[tuple[int, int | None, list[str]]]:
    rows = []
    for row in _table_rows("## Table I"):
        bounds = re.findall(r"\d+", row[0])
        low = int(bounds[0])
        high = int(bounds[1]) if len(bounds) > 1 else None  # "500001 and over"
        rows.append((low, high, row[1:]))
    return rows


def _reference_plans() -> dict[str, tuple[int, dict[float, str]]]:
    header = [float(v) for v in ("0.65", "1.0", "1.5", "2.5", "4.0", "6.5")]
    return {row[0]: (int(row[1]), dict(zip(header, row[2:], strict=True)))
            for row in _table_rows("## Table II-A")}


def test_every_cell_of_table_I_gives_the_reference_code_letter():
    rows = _reference_letters()
    assert len(rows) == 15
    for low, high, letters in rows:
        assert len(letters) == len(LEVELS) == 7
        for level, letter in zip(("S-1", "S-2", "S-3", "S-4", "I", "II", "III"), letters,
                                 strict=True):
            # Both ends of every row: the row boundaries are where transcriptions go wrong.
            for lot_size in (low, high if high is not None else 10_000_000):
                assert code_letter(lot_size, level) == letter, (lot_size, level)


def _expected_cell(plans, letter: str, aql: float) -> tuple[str, int, int, int]:
    """Follow the reference's arrows from (letter, aql): the plan letter, n, Ac, Re."""
    letters = list(plans)
    index = letters.index(letter)
    while (cell := plans[letters[index]][1][aql]) in ("v", "^"):
        index += 1 if cell == "v" else -1
    ac, re_ = (int(v) for v in cell.split("/"))
    return letters[index], plans[letters[index]][0], ac, re_


def test_every_cell_of_table_II_A_with_its_arrows_and_the_100_percent_rule():
    plans = _reference_plans()
    assert list(plans) == list("ABCDEFGHJKLMNPQR")
    assert tuple(plans["A"][1]) == AQL_VALUES
    checked = arrows = hundred_percent = 0
    for low, high, letters in _reference_letters():
        for level, letter in zip(LEVELS, letters, strict=True):
            for lot_size in (low, high if high is not None else 10_000_000):
                for aql in AQL_VALUES:
                    plan_letter, n, ac, re_ = _expected_cell(plans, letter, aql)
                    got = sampling_plan(lot_size, level, aql)
                    assert (got.code_letter, got.ac, got.re) == (plan_letter, ac, re_), \
                        (lot_size, level, aql)
                    # The 100% rule: a sample that reaches the lot size is the whole lot.
                    assert got.inspect_all == (n >= lot_size)
                    assert got.sample_size == min(n, lot_size)
                    checked += 1
                    arrows += plan_letter != letter
                    hundred_percent += got.inspect_all
    # Every letter/AQL cell of Table II-A is reached (each letter appears in Table I).
    reached = {letter for _, _, row in _reference_letters() for letter in row}
    assert reached == set(plans)
    assert checked == 15 * 7 * 2 * 6 and arrows > 100 and hundred_percent > 20


@pytest.mark.parametrize(("lot_size", "level", "aql", "expected"), [
    # The issue's and the reference's worked examples.
    (3000, "II", 2.5, ("K", 125, 7, 8, False)),
    (3000, "II", 4.0, ("K", 125, 10, 11, False)),
    (60, "II", 2.5, ("F", 20, 1, 2, False)),  # E's arrow leads down to F
    (5, "II", 6.5, ("A", 2, 0, 1, False)),
    # Arrow up: K at AQL 6.5 is 14/15; M at 6.5 points up to L (n 200, 21/22).
    (10000, "II", 6.5, ("L", 200, 21, 22, False)),
    # 100%: lot 10 at Level II is B; AQL 0.65 leads down to F (n 20) > 10 units.
    (10, "II", 0.65, ("F", 10, 0, 1, True)),
    # AQL 0 (no defect allowed) keeps the letter's own sample size.
    (3000, "II", 0, ("K", 125, 0, 1, False)),
    # Special level S-3 gives E; E at AQL 1.5 points up to D (n 8, 0/1).
    (3000, "S-3", 1.5, ("D", 8, 0, 1, False)),
])
def test_worked_examples(lot_size, level, aql, expected):
    plan = sampling_plan(lot_size, level, aql)
    letter, n, ac, re_, inspect_all = expected
    assert (plan.code_letter, plan.sample_size, plan.ac, plan.re, plan.inspect_all) == \
        (letter, n, ac, re_, inspect_all)


def test_lot_plan_defaults_and_units_to_inspect():
    plan = lot_plan(3000)
    assert plan.code_letter == "K" and plan.level == "II"
    assert {name: (p.aql, p.sample_size, p.ac, p.re) for name, p in plan.plans.items()} == {
        "critical": (0.0, 125, 0, 1), "major": (2.5, 125, 7, 8), "minor": (4.0, 125, 10, 11)}
    assert plan.units_to_inspect == 125
    # Classes with different sample sizes: the lot draws the largest.
    small = lot_plan(60, aql={"major": 0.65, "minor": 6.5})
    assert small.plans["major"].sample_size == 20 and small.plans["minor"].sample_size == 13
    assert small.units_to_inspect == 20


@pytest.mark.parametrize(("call", "message"), [
    (lambda: code_letter(1), "at least 2"),
    (lambda: code_letter(100, "IV"), "unknown inspection level"),
    (lambda: sampling_plan(100, "II", 3.0), "not in the sampling table"),
    (lambda: sampling_plan(100, "II", -1), "0 or positive"),
    (lambda: lot_plan(100, aql={"cosmetic": 1.0}), "unknown defect class"),
])
def test_what_the_tables_do_not_cover_is_refused_with_the_allowed_values(call, message):
    with pytest.raises(AqlError, match=message):
        call()


def test_level_names_are_case_insensitive():
    assert code_letter(3000, "ii") == "K" and code_letter(3000, "s-4") == "G"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SEALCHECK, "aql", *args], capture_output=True, text=True, timeout=60)


def test_cli_json_matches_the_issue_example():
    done = _run("--lot-size", "3000", "--level", "II", "--aql", "major=2.5", "--aql",
                "minor=4.0", "--aql", "critical=0", "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert (plan["lot_size"], plan["level"], plan["code_letter"]) == (3000, "II", "K")
    assert {k: plan["plans"]["major"][k] for k in ("aql", "sample_size", "ac", "re")} == \
        {"aql": 2.5, "sample_size": 125, "ac": 7, "re": 8}
    assert plan["plans"]["minor"]["ac"] == 10 and plan["plans"]["critical"]["re"] == 1
    assert plan["plans"]["major"]["inspect_all"] is False


def test_cli_marks_the_100_percent_rule():
    done = _run("--lot-size", "5", "--aql", "major=2.5", "--json")
    major = json.loads(done.stdout)["plans"]["major"]
    assert major["inspect_all"] is True and major["sample_size"] == 5
    text = _run("--lot-size", "5").stdout
    assert "100%" in text and "code letter A" in text


@pytest.mark.parametrize("args", [
    ("--lot-size", "0"),
    ("--lot-size", "many"),
    ("--lot-size", "100", "--aql", "major=3"),
    ("--lot-size", "100", "--aql", "major"),
    ("--lot-size", "100", "--aql", "cosmetic=1.0"),
    ("--lot-size", "100", "--level", "IV"),
    (),
])
def test_cli_bad_input_exits_2_with_one_line(args):
    done = _run(*args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
