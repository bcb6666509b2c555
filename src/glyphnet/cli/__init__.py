"""The ``glyphnet`` command line: a thin shell over the library. Each sub-command is one module
here with ``add_parser(sub)`` and ``run(args)``, registered in COMMANDS. User mistakes end in
one 'glyphnet: error: ...' line and a non-zero exit; anything unexpected is reported as an
internal error with its traceback."""
import argparse
import importlib
import sys
import traceback

from ..errors import ConfigError, GlyphnetError
from ..registry import Registry

COMMANDS = Registry("command")
for _name in ("train", "evaluate", "predict", "gradcheck", "report", "experiment", "data",
              "serve", "robustness", "export", "compare",
              "plot"):
    COMMANDS.register(_name, f"{__name__}.{_name}")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="glyphnet", description="Neural networks from scratch in NumPy for handwritten "
                                     "characters.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module in COMMANDS.items():
        command = importlib.import_module(module)
        command.add_parser(sub).set_defaults(run=command.run)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ConfigError as exc:
        print(f"glyphnet: error: {exc}", file=sys.stderr)
        return 2
    except GlyphnetError as exc:
        print(f"glyphnet: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("glyphnet: interrupted", file=sys.stderr)
        return 130
    except Exception:   # a bug, not a user mistake: show it
        traceback.print_exc()
        print("glyphnet: internal error, please report it with the traceback above",
              file=sys.stderr)
        return 70


if __name__ == "__main__":
    sys.exit(main())
