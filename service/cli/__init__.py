"""The `sealcheck` command line.

Exit codes (scripts rely on them): 0 pass, 1 fail, 2 bad input or usage (one line on stderr),
3 inconclusive, 4 internal error (a bug: set SEALCHECK_DEBUG=1 for the traceback).

One module per command holds its arguments (``add_parser``) and its work (``run``); what they
share is in :mod:`service.cli.common`. Heavy imports (OpenCV, NumPy, the pipeline) happen inside
the command functions, so that `sealcheck --help` and usage errors answer at once.
"""

from __future__ import annotations

import argparse
import os
import sys

from service.cli import aql, compare, gc, keys, rescore, serve
from service.cli.common import (
    EXIT_FAIL,
    EXIT_INCONCLUSIVE,
    EXIT_INTERNAL,
    EXIT_PASS,
    EXIT_USAGE,
    Parser,
    UsageError,
)

__all__ = ["EXIT_FAIL", "EXIT_INCONCLUSIVE", "EXIT_INTERNAL", "EXIT_PASS", "EXIT_USAGE",
           "UsageError", "build_parser", "main", "run"]

# In the order `sealcheck --help` lists them.
_COMMANDS = {"compare": compare, "serve": serve, "keys": keys, "gc": gc, "aql": aql,
             "rescore": rescore}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="sealcheck", description="Check production units against the sealed "
                    "golden sample.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for command in _COMMANDS.values():
        command.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:  # one line, like every usage error
            raise UsageError(f"a command is required, e.g. '{parser.prog} compare GOLDEN UNIT' "
                             f"(see '{parser.prog} --help')")
        return _COMMANDS[args.command].run(args)
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
        from service.settings import debug_requested

        if debug_requested():
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
    if compare.fast_exit:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BrokenPipeError:  # the reader left after all: as in main()
            code = 141
        os._exit(code)
    sys.exit(code)
