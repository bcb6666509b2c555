"""The Ray backend on a local Ray with 2 CPUs (one Ray start shared by the module)."""
import json
import os
import socket

import pytest

from glyphnet.experiments import RayBackend, comparable, run_experiment
from glyphnet.experiments.rundirs import execute
from glyphnet.experiments.tables import RUN_TIMING_FIELDS, SUMMARY_TIMING_FIELDS
from tiny import tiny_config

try:
    import ray
except ImportError:
    pytest.skip('Ray is not installed (pip install ".[ray]")', allow_module_level=True)

# Starting Ray alone takes seconds on two cores.
pytestmark = pytest.mark.slow

BASE = tiny_config(seed=1, train_limit=200, test_limit=100)


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    yield
    ray.shutdown()


def write_experiment(tmp_path, text):
    (tmp_path / "base.toml").write_text(BASE)
    path = tmp_path / "exp.toml"
    path.write_text('name = "tiny"\nbase = "base.toml"\n' + text)
    return path


def quiet(*args):
    pass


def test_no_cluster_at_the_address_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    from glyphnet.cli import main
    path = write_experiment(tmp_path, "")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    def no_cluster(**options):      # what ray.init(address="auto") raises without a cluster
        raise ConnectionError("Could not find any running Ray instance.")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)   # as in a fresh driver
    monkeypatch.setattr(ray, "init", no_cluster)
    assert main(["experiment", str(path), "--out", str(tmp_path / "out"), "--backend", "ray",
                 "--address", "auto"]) == 1
    assert capsys.readouterr().err == ("glyphnet: error: --address auto: cannot join the Ray "
                                       "cluster: Could not find any running Ray instance.\n")


def test_same_seeds_give_the_same_results_on_both_backends(tmp_path):
    path = write_experiment(tmp_path, """
jobs = 2
seeds = [0, 1]
[grid]
"optimizer.lr" = [0.01, 0.001]
""")
    local = run_experiment(path, tmp_path / "local", log=quiet)
    lines = []
    remote = run_experiment(path, tmp_path / "ray", log=lines.append,
                            backend=RayBackend(cpus_per_run=1))
    assert lines[0].endswith("4 to train on the ray backend")
    assert lines[-1] == "progress: 4/4 runs done"
    assert comparable(local) == comparable(remote)
    assert [r["status"] for r in remote["runs"]] == ["done"] * 4
    # Exactly the timing and node fields are left out of the comparison.
    row, summary = remote["runs"][0], remote["summary"][0]
    assert set(row) - set(comparable(remote)["runs"][0]) == set(RUN_TIMING_FIELDS)
    assert set(summary) - set(comparable(remote)["summary"][0]) == set(SUMMARY_TIMING_FIELDS)
    node = ray.get_runtime_context().get_node_id()
    assert {(r["node"], r["hostname"]) for r in remote["runs"]} == {(node, socket.gethostname())}
    assert {r["node"] for r in local["runs"]} == {None}
    # The driver wrote the same run directories the local backend writes.
    for r in remote["runs"]:
        assert sorted(os.listdir(tmp_path / "ray" / r["run"])) == \
            sorted(os.listdir(tmp_path / "local" / r["run"]))
        assert (tmp_path / "ray" / r["run"] / "config.toml").read_text() == \
            (tmp_path / "local" / r["run"] / "config.toml").read_text()
    assert not [n for n in os.listdir(tmp_path / "ray") if n.startswith(".")]
    assert json.loads((tmp_path / "ray" / "results.json").read_text()) == remote


def test_a_dead_worker_is_retried_once_then_the_run_is_reported_failed(tmp_path):
    path = write_experiment(tmp_path, """
[[runs]]
name = "ok"
[[runs]]
name = "dies-once"
[[runs]]
name = "dies-always"
""")
    marker = tmp_path / "died-once"

    def work(job, run_dir, threads, progress):
        def report(epochs):         # called by the training loop: the worker dies mid-run
            if epochs == 1 and (job.name == "dies-always" or
                                job.name == "dies-once" and not marker.exists()):
                marker.touch()
                os._exit(1)
            progress(epochs)
        return execute(job, run_dir, threads, report)

    out = tmp_path / "out"
    results = run_experiment(path, out, log=quiet, backend=RayBackend(work=work))
    status = {r["run"]: r["status"] for r in results["runs"]}
    assert status == {"ok": "done", "dies-once": "done", "dies-always": "failed"}
    error = results["runs"][2]["error"]
    assert error.startswith("the run's worker died twice: ")
    assert "1 of 1 failed" in (out / "results.md").read_text()
    # Rerunning trains only the run that failed.
    lines = []
    results = run_experiment(path, out, log=lines.append, backend=RayBackend())
    assert lines[0].endswith("3 run(s), 2 kept from an earlier execution, 1 to train on the "
                             "ray backend")
    assert [r["status"] for r in results["runs"]] == ["done"] * 3


def test_ctrl_c_cancels_the_tasks_and_keeps_what_finished(tmp_path):
    path = write_experiment(tmp_path, """
[[runs]]
name = "quick"
[[runs]]
name = "long-a"
"training.epochs" = 500
"training.batch_size" = 1
[[runs]]
name = "long-b"
"training.epochs" = 500
"training.batch_size" = 1
""")
    out = tmp_path / "out"
    lines = []

    def log(line):
        lines.append(line)
        if line.startswith("progress: 1/3 runs done") and not any("interrupted" in x
                                                                   for x in lines):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_experiment(path, out, log=log, backend=RayBackend())
    assert lines[-1] == (f"interrupted: 1 run(s) kept in {out}; run the same command again "
                         f"to train the 2 missing")
    results = json.loads((out / "results.json").read_text())
    assert [r["status"] for r in results["runs"]] == ["done", "missing", "missing"]
    assert sorted(n for n in os.listdir(out) if not n.startswith("results")) == ["quick"]
    assert "1 of 1 missing" in (out / "results.md").read_text()
