"""The `sealcheck` command line.

Exit codes (scripts rely on them): 0 pass, 1 fail, 2 bad input or usage (one line on stderr),
3 inconclusive, 4 internal error (a bug: set SEALCHECK_DEBUG=1 for the traceback).

Heavy imports (OpenCV, NumPy, the pipeline) happen inside the command functions, so that
`sealcheck --help` and usage errors answer at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INCONCLUSIVE, EXIT_INTERNAL = 0, 1, 2, 3, 4
_VERDICT_EXIT = {"pass": EXIT_PASS, "fail": EXIT_FAIL, "inconclusive": EXIT_INCONCLUSIVE}


class UsageError(Exception):
    """Bad input or usage: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _max_pixels(minimum: int) -> int:
    raw = os.environ.get("SEALCHECK_MAX_PIXELS", "80000000")
    try:
        value = int(raw)
    except ValueError:
        raise UsageError(f"SEALCHECK_MAX_PIXELS must be a whole number of pixels, got {raw!r}") \
            from None
    # Below the smallest image load_image accepts, every photo would be refused anyway.
    if value < minimum:
        raise UsageError(f"SEALCHECK_MAX_PIXELS must be at least {minimum}, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sealcheck", description="Check production units against the sealed "
                     "golden sample.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    compare = commands.add_parser(
        "compare", help="compare a unit photo with the golden sample photo",
        description="Register UNIT onto GOLDEN, measure colour drift (CIEDE2000), structure "
        "(SSIM) and defect regions, and judge them against the spec. Exit code: 0 pass, "
        "1 fail, 2 bad input, 3 inconclusive.",
    )
    compare.add_argument("golden", metavar="GOLDEN", help="photo of the golden sample")
    compare.add_argument("unit", metavar="UNIT", help="photo of the production unit")
    compare.add_argument("--spec", metavar="FILE", help="spec sheet, JSON or YAML")
    compare.add_argument("--json", action="store_true", help="print the report as JSON")
    compare.add_argument("--out", metavar="DIR", help="write report.json, overlay.png, "
                         "defect_map.png and aligned_unit.png to DIR")
    serve = commands.add_parser(
        "serve", help="run the HTTP service",
        description="Run the HTTP API (OpenAPI at /docs). Settings come from SEALCHECK_* "
        "environment variables: SEALCHECK_DATABASE_URL (default: SQLite under "
        "SEALCHECK_DATA_DIR), SEALCHECK_DATA_DIR (default ./data), SEALCHECK_MAX_UPLOAD_BYTES, "
        "SEALCHECK_MAX_PIXELS, SEALCHECK_WORKERS, SEALCHECK_QUEUE_SIZE, "
        "SEALCHECK_GOLDEN_CACHE_SIZE.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on "
                       "(default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    keys = commands.add_parser("keys", help="manage API keys",
                               description="Manage the API keys of the HTTP service.")
    key_commands = keys.add_subparsers(dest="keys_command", metavar="COMMAND",
                                       parser_class=_Parser)
    create = key_commands.add_parser(
        "create", help="create an API key for a tenant and print it",
        description="Create an API key for TENANT (the tenant is created if new) and print the "
        "key alone on stdout; it is stored hashed and cannot be shown again. Uses the same "
        "SEALCHECK_* settings as 'sealcheck serve'.",
    )
    create.add_argument("--tenant", required=True, metavar="NAME", help="tenant name")
    gc = commands.add_parser(
        "gc", help="remove stored files that no record names",
        description="Remove files in the data directory that no row names: what uploads "
        "killed before their commit leave behind. Only files older than --older-than go, "
        "because a running server or batch job writes each file just before the row that "
        "names it. Uses the same SEALCHECK_* settings as 'sealcheck serve'.",
    )
    gc.add_argument("--older-than", default="1h", metavar="AGE",
                    help="only files at least this old: a number with s, m, h or d "
                    "(default 1h)")
    gc.add_argument("--dry-run", action="store_true", help="count, remove nothing")
    aql = commands.add_parser(
        "aql", help="print the AQL sampling plan of a lot (ISO 2859-1)",
        description="Print the single sampling plan, normal inspection, of ISO 2859-1 (= ANSI/ASQ "
        "Z1.4): the sample size code letter, and per defect class the sample size and the "
        "acceptance (Ac) and rejection (Re) numbers. When a sample reaches the lot size, every "
        "unit is inspected.",
    )
    aql.add_argument("--lot-size", required=True, type=int, metavar="N", help="units in the lot")
    aql.add_argument("--level", default="II", metavar="LEVEL",
                     help="inspection level: S-1, S-2, S-3, S-4, I, II (default) or III")
    aql.add_argument("--aql", action="append", default=[], metavar="CLASS=VALUE",
                     help="AQL of a defect class, repeatable; defaults critical=0 (none "
                     "allowed), major=2.5, minor=4.0; values 0, 0.65, 1.0, 1.5, 2.5, 4.0, 6.5")
    aql.add_argument("--json", action="store_true", help="print the plan as JSON")
    rescore = commands.add_parser(
        "rescore", help="re-score archived golden/unit pairs in bulk (resumable)",
        description="Score every golden/unit pair of MANIFEST (CSV or JSON Lines with the "
        "columns golden, unit and optionally spec, id; relative paths are read from the "
        "manifest's directory; golden may be the id of a stored golden) and append one JSON "
        "object per item to RESULTS. Re-running the same command after an interruption "
        "finishes the job: items already scored with the same inputs and the same scoring "
        "version are skipped, and none is written twice. A bad item is recorded as an error "
        "and the job goes on. The summary goes to RESULTS.summary.json and stderr. With "
        "--from-db, the stored inspections are re-scored instead and each new report is stored "
        "as a new version beside the old one (SEALCHECK_* settings as for 'sealcheck serve'). "
        "Exit code 0 when every item has a result (errors included), 2 for bad usage or "
        "input.",
    )
    rescore.add_argument("manifest", metavar="MANIFEST", nargs="?",
                         help="CSV or JSON Lines file of the pairs to score")
    rescore.add_argument("--out", metavar="RESULTS", help="JSON Lines results file (created, "
                         "or resumed when it exists)")
    rescore.add_argument("--workers", type=int, metavar="N", help="worker processes (local; "
                         "one core each) or actors (ray); default: the CPUs this process may "
                         "use (with --ray-address: the cluster's CPUs)")
    rescore.add_argument("--engine", choices=("local", "ray"), default="local",
                         help="local: a process pool on this machine (default); ray: Ray Data")
    rescore.add_argument("--ray-address", metavar="ADDR", help="with --engine ray: the cluster "
                         "to connect to (e.g. ray://head:10001 or auto); none starts a local "
                         "Ray instance")
    rescore.add_argument("--parquet", metavar="FILE", help="also write the results as Parquet "
                         "(needs pyarrow, part of sealcheck[ray])")
    rescore.add_argument("--from-db", action="store_true", help="re-score the stored "
                         "inspections instead of a manifest")
    rescore.add_argument("--golden", metavar="ID", help="with --from-db: only the inspections "
                         "of this stored golden")
    rescore.add_argument("--since", metavar="DATE", help="with --from-db: only inspections made "
                         "at or after DATE (ISO 8601, e.g. 2026-01-31 or 2026-01-31T08:00Z; "
                         "UTC unless it says otherwise)")
    return parser


def _card_words(side) -> str:
    """'card (mcc, confidence 0.97), corrected: residual Delta-E00 0.7' or 'no card'."""
    if not side.chart_found:
        return "no card"
    words = f"card ({side.method}, confidence {side.confidence:.2f})"
    if side.residual_delta_e00_mean is not None:
        words += f", fit residual Delta-E00 {side.residual_delta_e00_mean:.1f}"
    if side.px_per_mm is not None:
        words += f", {side.px_per_mm:.2f} px/mm"
    return words + ("" if side.applied else ", not applied")


def _summary(report) -> str:
    lines = [f"verdict: {report.verdict.upper()}   score: {report.score:.0f}/100"
             + (f"   counts as: {report.defect_class}" if report.defect_class else "")]
    lines += [f"  - {reason}" for reason in report.reasons]
    reg = report.registration
    if reg.ok:
        rms = f", rms {reg.rms_px:.2f} px" if reg.rms_px is not None else ""
        lines.append(f"registration: {reg.method}, {reg.inliers} inliers{rms}")
    lines.append("calibration: " + "; ".join(
        f"{name} {_card_words(side)}" for name, side in (("golden", report.calibration.golden),
                                                          ("unit", report.calibration.unit))))
    colour = report.color
    if colour.delta_e00 is not None:
        lines.append(
            f"colour: Delta-E00 {colour.delta_e00:.2f} (dL* {colour.delta_L:+.2f}, "
            f"dC* {colour.delta_C:+.2f}, dH* {colour.delta_H:+.2f}; CMC(2:1) "
            f"{colour.delta_e_cmc:.2f})"
        )
    if report.structure.ssim is not None:
        lines.append(f"structure: SSIM {report.structure.ssim:.3f}")
    if report.dimensions is not None:
        d = report.dimensions
        lines.append(f"dimensions: width {d.delta_width_mm:+.1f} mm, height "
                     f"{d.delta_height_mm:+.1f} mm (scale {d.scale_ratio:.4f})")
    lines.append(f"defects: {len(report.defects.regions)} region(s)")
    for number, region in enumerate(report.defects.regions[:10], start=1):
        x, y, w, h = region.bbox
        lines.append(f"  {number}. {region.severity} {region.kind} at x={x} y={y} {w}x{h} px, "
                     f"{region.area_px} px, score {region.score:.2f}")
    total = sum(report.timings_ms.values())
    lines.append(f"time: {total:.0f} ms")
    return "\n".join(lines)


def _write_png(path: Path, rgb) -> None:
    import cv2

    image = rgb[..., ::-1] if rgb.ndim == 3 else rgb
    if not cv2.imwrite(str(path), image):
        raise UsageError(f"{path}: could not write the file")


def _prepare_out_dir(out: Path) -> None:
    """Create --out before the comparison runs, so a bad path fails at once."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{out}: cannot create the output directory ({exc.strerror})") \
            from None
    if not os.access(out, os.W_OK):
        raise UsageError(f"{out}: the output directory is not writable")


def _write_outputs(out: Path, comparison) -> None:
    try:
        (out / "report.json").write_text(comparison.report.model_dump_json(indent=2) + "\n")
    except OSError as exc:
        raise UsageError(f"{out}: cannot write the output directory ({exc.strerror})") from None
    _write_png(out / "overlay.png", comparison.overlay)
    _write_png(out / "defect_map.png", comparison.defect_map)
    if comparison.aligned_unit is not None:
        _write_png(out / "aligned_unit.png", comparison.aligned_unit)
    else:  # a stale file from an earlier run would be mistaken for this run's alignment
        (out / "aligned_unit.png").unlink(missing_ok=True)


def _compare(args: argparse.Namespace) -> int:
    import threading

    from service.runtime import tune_allocator
    from vision.warmup import warm_up

    tune_allocator()
    # One-time library set-up (OpenCV's Lab tables, the defect model's session) runs beside
    # the imports and decoding below instead of inside the comparison; see vision/warmup.py.
    warming = threading.Thread(target=warm_up, name="sealcheck-warm-up", daemon=True)
    warming.start()
    try:
        code = _compare_photos(args)
    finally:
        warming.join()  # never leave it running in C while the interpreter shuts down
    global _fast_exit
    _fast_exit = True
    return code


def _check_defect_model() -> None:
    """A missing or foreign model file (SEALCHECK_DEFECT_MODEL) is a usage error, in one line."""
    from vision import defect_model

    try:
        defect_model.model_version()
    except defect_model.DefectModelError as exc:
        raise UsageError(str(exc)) from None


def _compare_photos(args: argparse.Namespace) -> int:
    from vision.decode import MIN_SIDE, ImageDecodeError
    from vision.pipeline import compare_side_by_side, load_pair
    from vision.spec import SpecError, load_spec

    max_pixels = _max_pixels(MIN_SIDE * MIN_SIDE)
    if args.out:
        _prepare_out_dir(Path(args.out))
    try:
        spec = load_spec(args.spec) if args.spec else None
        # The report alone does not need every pixel of a 12 MP photo: JPEGs are decoded at a
        # reduced size through the DCT (positions stay in the photo's pixels). Pictures
        # (--out) are drawn at the photo's size, so they take the full decode.
        decoded = load_pair(args.golden, args.unit, for_report=not args.out,
                            max_pixels=max_pixels)
        photos = {"golden": decoded[0][0], "unit": decoded[1][0]}
        sizes = {"golden": decoded[0][1], "unit": decoded[1][1]}
    except (ImageDecodeError, SpecError) as exc:
        raise UsageError(str(exc)) from None
    _check_defect_model()  # loaded meanwhile by the warm-up thread
    if spec is not None and spec.roi is not None:
        x, y, w, h = spec.roi
        gw, gh = sizes["golden"]
        if x >= gw or y >= gh:
            raise UsageError(f"{args.spec}: roi starts at ({x}, {y}), outside the golden photo "
                             f"({gw}x{gh}); give it in golden pixels")
    # The golden's preparation runs beside the unit's (card, features) in two threads.
    comparison = compare_side_by_side(photos["golden"], photos["unit"], spec,
                                      render_images=args.out is not None,
                                      golden_photo_size=sizes["golden"],
                                      unit_photo_size=sizes["unit"])
    if args.out:
        _write_outputs(Path(args.out), comparison)
    if args.json:
        print(comparison.report.model_dump_json(indent=2))
    else:
        print(_summary(comparison.report))
    return _VERDICT_EXIT[comparison.report.verdict]


def _settings():  # -> service.settings.Settings (imported lazily, like everything heavy)
    from service.settings import Settings, SettingsError

    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise UsageError(str(exc)) from None


def _migrated_engine(settings):  # -> sqlalchemy.engine.Engine
    """An engine on the configured database with the schema up to date; a usage error (one
    line) when the database cannot be reached, rather than a traceback."""
    import sqlalchemy as sa

    from service.db import make_engine, migrate

    try:
        engine = make_engine(settings.database_url)
    except OSError as exc:  # the SQLite file's directory cannot be created
        raise UsageError(f"cannot create the database directory ({exc.strerror}: "
                         f"{exc.filename}); check SEALCHECK_DATA_DIR / SEALCHECK_DATABASE_URL") \
            from None
    try:
        migrate(engine)
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        engine.dispose()
        url = sa.engine.make_url(settings.database_url).render_as_string(hide_password=True)
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise UsageError(f"cannot open the database {url} ({reason}); check "
                         "SEALCHECK_DATABASE_URL") from None
    return engine


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from service.app import create_app

    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, got {args.port}")
    from service.storage import BlobStore

    settings = _settings()
    _migrated_engine(settings).dispose()  # a bad database URL fails here, in one line
    try:
        BlobStore(settings.data_dir).open()
    except OSError as exc:
        raise UsageError(f"cannot use the data directory {settings.data_dir} ({exc.strerror}); "
                         "check SEALCHECK_DATA_DIR") from None
    _check_defect_model()
    from service.runtime import tune_allocator

    tune_allocator()  # big photo arrays reuse freed memory (see service/runtime.py)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info")
    return 0


def _keys(args: argparse.Namespace) -> int:
    if args.keys_command != "create":
        raise UsageError("a keys command is required, e.g. 'sealcheck keys create --tenant "
                         "NAME' (see 'sealcheck keys --help')")
    tenant = args.tenant.strip()
    if not tenant or len(tenant) > 200:
        raise UsageError("--tenant must be a name of 1 to 200 characters")
    from service.auth import create_key
    from service.db import make_sessionmaker

    engine = _migrated_engine(_settings())
    try:
        with make_sessionmaker(engine)() as session:
            key = create_key(session, tenant)
    finally:
        engine.dispose()
    print(key)  # alone on stdout, so that scripts can capture it
    return 0


def _duration(text: str):  # -> datetime.timedelta
    import datetime as dt

    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = text[:-1], text[-1:].lower()
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if unit not in units or not value >= 0 or value == float("inf"):
        raise UsageError(f"--older-than {text!r}: write a number and a unit, e.g. 30m, 1h "
                         "or 2d")
    return dt.timedelta(seconds=value * units[unit])


def _gc(args: argparse.Namespace) -> int:
    from service.gc import collect_garbage
    from service.storage import BlobStore

    older_than = _duration(args.older_than)
    settings = _settings()
    engine = _migrated_engine(settings)
    try:
        result = collect_garbage(engine, BlobStore(settings.data_dir), older_than,
                                 dry_run=args.dry_run)
    finally:
        engine.dispose()
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb} {result.removed} unreferenced file(s), {result.removed_bytes} bytes; "
          f"left {result.recent} younger than {args.older_than}; {result.kept} in use")
    return 0


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


def _aql(args: argparse.Namespace) -> int:
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


def _since(value: str):  # -> datetime.datetime, timezone-aware
    import datetime as dt

    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(f"--since {value!r}: not a date; write it in ISO 8601, e.g. 2026-01-31 "
                         "or 2026-01-31T08:00:00Z") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _rescore_options(args: argparse.Namespace):  # -> service.rescore.job.RescoreOptions
    import importlib.util

    from service.rescore.job import RescoreOptions
    from service.settings import _default_workers

    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    if args.ray_address and args.engine != "ray":
        raise UsageError("--ray-address needs --engine ray")
    if args.engine == "ray" and importlib.util.find_spec("ray") is None:
        raise UsageError("--engine ray needs Ray Data, which is not installed: pip install "
                         "'sealcheck[ray]'")
    # On a Ray cluster the default is the cluster's CPUs, known only once connected.
    workers = args.workers or (None if args.ray_address else _default_workers())
    return RescoreOptions(
        workers=workers, engine=args.engine,
        ray_address=args.ray_address, max_pixels=_max_pixels(16 * 16),
        parquet=Path(args.parquet) if args.parquet else None)


def _rescore(args: argparse.Namespace) -> int:
    from service.rescore.job import JobError
    from service.rescore.manifest import ManifestError

    if args.from_db:
        if args.manifest or args.out or args.parquet:
            raise UsageError("--from-db re-scores the stored inspections into the database: "
                             "give no MANIFEST, --out or --parquet")
        since = _since(args.since) if args.since else None
        options = _rescore_options(args)
        from service.rescore.stored import rescore_stored
        from service.storage import BlobStore

        settings = _settings()
        engine = _migrated_engine(settings)
        try:
            rescore_stored(engine, BlobStore(settings.data_dir), options,
                           golden_id=args.golden, since=since)
        except JobError as exc:
            raise UsageError(str(exc)) from None
        finally:
            engine.dispose()
        return 0
    if args.golden or args.since:
        raise UsageError("--golden and --since select stored inspections: use them with "
                         "--from-db")
    if not args.manifest or not args.out:
        raise UsageError("give a MANIFEST and --out RESULTS, e.g. 'sealcheck rescore "
                         "pairs.csv --out results.jsonl' (or --from-db)")
    if Path(args.out).is_dir():
        raise UsageError(f"--out {args.out}: is a directory; name the results file, e.g. "
                         f"{Path(args.out) / 'results.jsonl'}")
    options = _rescore_options(args)
    from service.rescore.job import rescore_manifest

    engines = []

    def open_database():
        from service.storage import BlobStore

        settings = _settings()
        engines.append(_migrated_engine(settings))
        return engines[-1], BlobStore(settings.data_dir)

    try:
        rescore_manifest(args.manifest, args.out, options, open_database=open_database)
    except (JobError, ManifestError) as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"{exc.filename or args.out}: {exc.strerror}") from None
    finally:
        for engine in engines:
            engine.dispose()
    return 0


_COMMANDS = {"compare": _compare, "serve": _serve, "keys": _keys, "aql": _aql, "gc": _gc,
             "rescore": _rescore}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:  # one line, like every usage error
            raise UsageError(f"a command is required, e.g. '{parser.prog} compare GOLDEN UNIT' "
                             f"(see '{parser.prog} --help')")
        return _COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"sealcheck: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`sealcheck compare ... | head`): no traceback, and the shell's
        # code for a process ended by SIGPIPE (128 + 13), never a verdict we did not print.
        # stdout goes to /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # a bug: say so in one line, keep the traceback for debugging
        if os.environ.get("SEALCHECK_DEBUG"):
            raise
        print(f"sealcheck: internal error: {exc.__class__.__name__}: {exc} (set "
              "SEALCHECK_DEBUG=1 for the traceback and please report it)", file=sys.stderr)
        return EXIT_INTERNAL


def run() -> None:
    """The console script: :func:`main`, then exit; a comparison exits without tearing down.

    A one-shot ``compare`` has written its report by then, and the interpreter's orderly
    shutdown (freeing hundreds of MB of arrays, unloading onnxruntime and OpenCV) took about
    100 ms of a 12 MP run on the development machine: the operating system frees it all at
    once. Other commands (pools, databases, Ray) keep the orderly exit and its handlers.
    """
    code = main()
    if _fast_exit:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BrokenPipeError:  # the reader left after all: as in main()
            code = 141
        os._exit(code)
    sys.exit(code)


# Set by a finished comparison: nothing is left that needs the interpreter's orderly shutdown.
_fast_exit = False


if __name__ == "__main__":
    run()
