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
    lines = [f"verdict: {report.verdict.upper()}   score: {report.score:.0f}/100"]
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
    from vision.decode import MIN_SIDE, ImageDecodeError, load_image
    from vision.pipeline import compare
    from vision.spec import SpecError, load_spec

    max_pixels = _max_pixels(MIN_SIDE * MIN_SIDE)
    if args.out:
        _prepare_out_dir(Path(args.out))
    try:
        spec = load_spec(args.spec) if args.spec else None
        golden = load_image(args.golden, max_pixels=max_pixels)
        unit = load_image(args.unit, max_pixels=max_pixels)
    except (ImageDecodeError, SpecError) as exc:
        raise UsageError(str(exc)) from None
    if spec is not None and spec.roi is not None:
        x, y, w, h = spec.roi
        gh, gw = golden.shape[:2]
        if x >= gw or y >= gh:
            raise UsageError(f"{args.spec}: roi starts at ({x}, {y}), outside the golden photo "
                             f"({gw}x{gh}); give it in golden pixels")
    comparison = compare(golden, unit, spec, render_images=args.out is not None)
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


_COMMANDS = {"compare": _compare, "serve": _serve, "keys": _keys}


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


if __name__ == "__main__":
    sys.exit(main())
