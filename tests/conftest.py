"""Fixtures every test module can use: the in-process command line (the CLI, batch and
bad-input tests call it)."""

from __future__ import annotations

import os

import pytest

from service.cli import main


@pytest.fixture
def cli(capfd, monkeypatch):
    """Call ``main()`` in-process: returns (exit code, stdout, stderr) at the fd level.

    Every ``SEALCHECK_*`` variable of the calling environment is removed first, so the
    settings are the defaults unless a test sets them.
    """
    for name in list(os.environ):
        if name.startswith("SEALCHECK_"):
            monkeypatch.delenv(name)

    def call(*args: str | os.PathLike) -> tuple[int, str, str]:
        capfd.readouterr()  # drop anything printed before the call
        code = main([str(a) for a in args])
        out, err = capfd.readouterr()
        return code, out, err

    return call
