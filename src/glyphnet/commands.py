"""Sub-commands that live beside the code they drive: each entry is a function that adds its
parser to the ``glyphnet`` command line (see cli.build_parser)."""

from .datacmd import add_parser as data_command
from .experiments import add_parser as experiment_command
from .report import add_parser as report_command
from .web.server import add_parser as web_serve

REGISTER = []
REGISTER.append(web_serve)
REGISTER.append(data_command)
REGISTER.append(report_command)
REGISTER.append(experiment_command)
