"""Experiments: declarative sweeps of configs (plan), trained on local processes or a Ray
cluster (backends), with run directories kept across executions (rundirs) and tabulated with
mean and spread over seeds (tables)."""
from .backends import LocalBackend, RayBackend
from .plan import Run, load_experiment, parse_assignment
from .sweep import run_experiment
from .tables import comparable, markdown, mean_std
