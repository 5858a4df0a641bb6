"""What the commands share: exit codes, the one-line usage error, settings and the database.

Everything heavy is imported inside the functions, so that `sealcheck --help` answers at once.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

__all__ = ["EXIT_FAIL", "EXIT_INCONCLUSIVE", "EXIT_INTERNAL", "EXIT_PASS", "EXIT_USAGE",
           "VERDICT_EXIT", "Parser", "UsageError", "comparison_settings",
           "defect_model_configured", "load_settings", "migrated_engine"]

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INCONCLUSIVE, EXIT_INTERNAL = 0, 1, 2, 3, 4
VERDICT_EXIT = {"pass": EXIT_PASS, "fail": EXIT_FAIL, "inconclusive": EXIT_INCONCLUSIVE}


class UsageError(Exception):
    """Bad input or usage: printed as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        raise UsageError(f"{message} (see '{self.prog} --help')")


def load_settings():  # -> service.settings.Settings (imported lazily, like everything heavy)
    """Every ``SEALCHECK_*`` setting; a bad one is a usage error (one line)."""
    from service.settings import Settings, SettingsError

    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise UsageError(str(exc)) from None


def comparison_settings():  # -> service.settings.Settings
    """The settings a comparison needs (pixel cap, defect model), for commands that open no
    database; a bad one is a usage error (one line)."""
    from service.settings import Settings, SettingsError

    try:
        return Settings.for_comparison()
    except SettingsError as exc:
        raise UsageError(str(exc)) from None


@contextlib.contextmanager
def defect_model_configured(settings) -> Iterator[None]:
    """The defect model as `settings` say (SEALCHECK_DEFECT_MODEL, SEALCHECK_MODEL_THREADS)
    while the command runs; the previous configuration afterwards (main() may be called again
    in the same process)."""
    from vision import defect_model

    previous = defect_model.configure(path=settings.defect_model,
                                      threads=settings.model_threads)
    try:
        yield
    finally:
        defect_model.configure(path=previous.path, threads=previous.threads)


def migrated_engine(settings):  # -> sqlalchemy.engine.Engine
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
