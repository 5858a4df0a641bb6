"""`sealcheck keys create --tenant NAME`: an API key, printed once."""

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


def run(args: argparse.Namespace) -> int:
    if args.keys_command != "create":
        raise UsageError("a keys command is required, e.g. 'sealcheck keys create --tenant "
                         "NAME' (see 'sealcheck keys --help')")
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
