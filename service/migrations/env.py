"""Alembic environment: run the migrations on the connection sealcheck hands over."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from service.db import Base

target_metadata = Base.metadata


def _run(connection: sa.engine.Connection) -> None:
    # render_as_batch: SQLite cannot ALTER most things; batch mode copies the table instead.
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # run by the alembic command line: -x url=...
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("give the database URL: alembic -x url=DATABASE_URL upgrade head")
    with sa.create_engine(url).begin() as own_connection:
        _run(own_connection)
