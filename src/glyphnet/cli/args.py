"""argparse types and options shared by the sub-commands. A bad value ends in one
'glyphnet COMMAND: error: argument ...: expected ..., got ...' line from argparse."""
import argparse
import math


def _parsed(text, kind):
    try:
        value = kind(text)
    except ValueError:
        return None
    return value if kind is int or math.isfinite(value) else None


def number(kind=float, low=None, high=None, low_open=False, what=None):
    """An argparse type: a finite ``kind`` (int or float) within [low, high] ((low, high] with
    ``low_open``), else a message saying what was expected."""
    if what is None:
        noun = "an integer" if kind is int else "a number"
        bounds = []
        if low is not None:
            bounds.append(f"> {low:g}" if low_open else f">= {low:g}")
        if high is not None:
            bounds.append(f"<= {high:g}")
        what = f"{noun} {' and '.join(bounds)}".strip()

    def parse(text):
        value = _parsed(text, kind)
        ok = value is not None and (low is None or (value > low if low_open else value >= low)) \
            and (high is None or value <= high)
        if not ok:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    return parse


positive_int = number(int, 1, what="a positive integer")
non_negative_int = number(int, 0, what="an integer >= 0")
positive_float = number(float, 0, low_open=True, what="a positive number")
probability = number(float, 0, 1, what="a probability in [0, 1]")
port = number(int, 0, 65535, what="a port number 0-65535")


def add_data_dir(parser):
    parser.add_argument("--data-dir", metavar="DIR",
                        help="where named data sets live (default: $GLYPHNET_DATA, else "
                             "~/.glyphnet/data)")
