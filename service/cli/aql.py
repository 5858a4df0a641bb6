"""`sealcheck aql --lot-size N`: the ISO 2859-1 sampling plan of a lot, as a table or JSON."""

from __future__ import annotations

import argparse

from service.cli.common import UsageError

__all__ = ["add_parser", "run"]


def add_parser(commands) -> None:
    """The ``aql`` command's arguments."""
    parser = commands.add_parser(
        "aql", help="print the AQL sampling plan of a lot (ISO 2859-1)",
        description="Print the single sampling plan, normal inspection, of ISO 2859-1 (= ANSI/ASQ "
        "Z1.4): the sample size code letter, and per defect class the sample size and the "
        "acceptance (Ac) and rejection (Re) numbers. When a sample reaches the lot size, every "
        "unit is inspected.",
    )
    parser.add_argument("--lot-size", required=True, type=int, metavar="N", help="units in the lot")
    parser.add_argument("--level", default="II", metavar="LEVEL",
                        help="inspection level: S-1, S-2, S-3, S-4, I, II (default) or III")
    parser.add_argument("--aql", action="append", default=[], metavar="CLASS=VALUE",
                        help="AQL of a defect class, repeatable; defaults critical=0 (none "
                        "allowed), major=2.5, minor=4.0; values 0, 0.65, 1.0, 1.5, 2.5, 4.0, 6.5")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")


def _parse_aql_options(options: list[str]) -> dict[str, float]:
    from service.aql import DEFECT_CLASSES

    wanted: dict[str, float] = {}
    for option in options:
        name, sep, value = option.partition("=")
        name = name.strip().lower()
        if not sep or name not in DEFECT_CLASSES:
            raise UsageError(f"--aql {option!r}: write CLASS=VALUE with CLASS one of "
                             f"{', '.join(DEFECT_CLASSES)}, e.g. --aql major=2.5")
        try:
            wanted[name] = float(value)
        except ValueError:
            raise UsageError(f"--aql {option!r}: {value!r} is not a number") from None
    return wanted


def run(args: argparse.Namespace) -> int:
    import json

    from service.aql import AqlError, lot_plan

    try:
        plan = lot_plan(args.lot_size, args.level, _parse_aql_options(args.aql))
    except AqlError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps(plan.as_dict(), indent=2))
        return 0
    print(f"lot size {plan.lot_size}, level {plan.level}: code letter {plan.code_letter}")
    print(f"{'class':<9} {'AQL':>5} {'sample':>7} {'Ac':>4} {'Re':>4}")
    for name, class_plan in plan.plans.items():
        note = "  (100%: inspect every unit)" if class_plan.inspect_all else ""
        if class_plan.code_letter != plan.code_letter:
            note += f"  (arrow: plan {class_plan.code_letter})"
        print(f"{name:<9} {class_plan.aql:>5g} {class_plan.sample_size:>7} {class_plan.ac:>4} "
              f"{class_plan.re:>4}{note}")
    print(f"units to inspect: {plan.units_to_inspect}; reject as soon as a class reaches Re")
    return 0
