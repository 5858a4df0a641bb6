"""`python -m service.cli`: the `sealcheck` command."""

from service.cli import run

run()
