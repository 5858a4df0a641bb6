"""`sealcheck keys create --tenant NAME`: an API key, printed once; `keys list`; `keys revoke`."""

from __future__ import annotations

import argparse

from service.cli.common import Parser, UsageError, load_settings, migrated_engine

__all__ = ["add_parser", "run"]


def add_parser(commands) -> None:
    """The ``keys`` command and its sub-commands' arguments."""
    keys = commands.add_parser("keys", help="manage API keys",
                               description="Manage the API keys of the HTTP service.")
    key_commands = keys.add_subparsers(dest="keys_command", metavar="COMMAND",
                                       parser_class=Parser)
    create = key_commands.add_parser(
        "create", help="create an API key for a tenant and print it",
        description="Create an API key for TENANT (the tenant is created if new) and print the "
        "key alone on stdout; it is stored hashed and cannot be shown again. Uses the same "
        "SEALCHECK_* settings as 'sealcheck serve'.",
    )
    create.add_argument("--tenant", required=True, metavar="NAME", help="tenant name")
    key_commands.add_parser(
        "list", help="list the API keys: id, tenant, created, last used (never the key)",
        description="List every API key: its id (for 'keys revoke'), tenant, when it was "
        "created and when it was last used (to the hour; '-' if not since it was recorded). "
        "The keys themselves are stored hashed and cannot be shown.")
    revoke = key_commands.add_parser(
        "revoke", help="revoke an API key and sign out its web sessions",
        description="Revoke the API key KEY_ID (an id from 'sealcheck keys list'): it is "
        "refused from then on, and the web pages signed in with it are signed out. What the "
        "tenant stored stays.")
    revoke.add_argument("key_id", metavar="KEY_ID", help="the key's id from 'keys list'")


def run(args: argparse.Namespace) -> int:
    if args.keys_command == "list":
        return _list()
    if args.keys_command == "revoke":
        return _revoke(args.key_id)
    if args.keys_command != "create":
        raise UsageError("a keys command is required: 'sealcheck keys create --tenant NAME', "
                         "'sealcheck keys list' or 'sealcheck keys revoke KEY_ID'")
    tenant = args.tenant.strip()
    if not tenant or len(tenant) > 200:
        raise UsageError("--tenant must be a name of 1 to 200 characters")
    from service.auth import create_key
    from service.db import make_sessionmaker

    engine = migrated_engine(load_settings())
    try:
        with make_sessionmaker(engine)() as session:
            key = create_key(session, tenant)
    finally:
        engine.dispose()
    print(key)  # alone on stdout, so that scripts can capture it
    return 0


def _when(value) -> str:  # value: datetime | None
    return "-" if value is None else value.strftime("%Y-%m-%dT%H:%MZ")


def _list() -> int:
    from service.auth import list_keys
    from service.db import make_sessionmaker

    engine = migrated_engine(load_settings())
    try:
        with make_sessionmaker(engine)() as session:
            keys = list_keys(session)
    finally:
        engine.dispose()
    rows = [("ID", "TENANT", "CREATED", "LAST USED")] + [
        (key.id, key.tenant, _when(key.created_at), _when(key.last_used_at)) for key in keys]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join([*(row[i].ljust(widths[i]) for i in range(3)), row[3]]))
    return 0


def _revoke(key_id: str) -> int:
    import sqlalchemy as sa

    from service.auth import revoke_key
    from service.db import make_sessionmaker

    engine = migrated_engine(load_settings())
    try:
        with make_sessionmaker(engine)() as session:
            revoked = revoke_key(session, key_id.strip())
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0]
        raise UsageError(f"the database refused the change ({reason}); nothing was revoked, "
                         "try again once it can be written") from None
    finally:
        engine.dispose()
    if revoked is None:
        raise UsageError(f"no API key with id {key_id!r}; 'sealcheck keys list' shows the ids")
    print(f"revoked key {revoked.id} of tenant {revoked.tenant}; signed out "
          f"{revoked.sessions_ended} web session(s)")
    return 0
