"""Experiments: declarative sweeps of configs, trained in parallel and tabulated."""
from .sweep import load_experiment, markdown_table, parse_assignment, run_experiment
