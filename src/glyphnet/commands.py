"""Sub-commands that live beside the code they drive: each entry is a function that adds its
parser to the ``glyphnet`` command line (see cli.build_parser)."""

REGISTER = []
