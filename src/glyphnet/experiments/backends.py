"""Where an experiment's runs train: local processes (the default) or the tasks of a Ray
cluster. A backend's ``run(jobs, on_epoch, on_done)`` trains every job, calls
``on_epoch(name, epochs_completed)`` as runs progress and ``on_done(job, outcome)`` once per
job, with the run directory already in place. Outcomes are {"status": "done" | "diverged" |
"failed", "error", "node", "hostname"}. On Ctrl+C (or Terminated, a kill turned into an
interrupt) a backend stops the runs still going and re-raises; what finished is already
written."""
import concurrent.futures as futures
import contextlib
import multiprocessing
import os
import queue as queues
import signal
import socket
import tempfile

from ..errors import GlyphnetError
from .rundirs import execute, read_files, replace_run_dir, write_files

POLL_SECONDS = 0.5


def _failed(error):
    return {"status": "failed", "error": error}


def _internal(exc):
    return _failed(f"internal error, please report it: {type(exc).__name__}: {exc}")


class Terminated(KeyboardInterrupt):
    """The driver was asked to stop by SIGTERM (``kill``), which, unlike Ctrl+C in a terminal,
    reaches only the driver: the local backend passes it on to its workers, which checkpoint
    their runs and stop."""


class LocalBackend:
    """``jobs`` runs at a time in processes of this machine, each with cores / jobs BLAS
    threads; one job runs in this process."""
    name = "local"

    def __init__(self, jobs=1):
        self.jobs = jobs

    def run(self, jobs, on_epoch, on_done):
        threads = max(1, (os.cpu_count() or 1) // self.jobs)
        host = {"node": None, "hostname": socket.gethostname()}
        if self.jobs == 1:
            for job in jobs:
                try:
                    outcome = execute(job, job.run_dir, threads,
                                              lambda e, n=job.name: on_epoch(n, e))
                except Exception as exc:   # noqa: BLE001 - reported per run, others go on
                    outcome = _internal(exc)
                on_done(job, {**outcome, **host})
            return
        ctx = multiprocessing.get_context("spawn")
        events = ctx.Queue()
        pool = futures.ProcessPoolExecutor(min(self.jobs, len(jobs) or 1), mp_context=ctx,
                                           initializer=_init_local, initargs=(events,))
        try:
            pending = {pool.submit(_local_job, job, threads): job for job in jobs}
            while pending:
                done, _ = futures.wait(pending, POLL_SECONDS, futures.FIRST_COMPLETED)
                _drain(events, on_epoch)
                for future in done:
                    job = pending.pop(future)
                    try:
                        outcome = future.result()
                    except futures.process.BrokenProcessPool:
                        outcome = _failed("the worker process died")
                    except Exception as exc:   # noqa: BLE001
                        outcome = _internal(exc)
                    on_done(job, {**outcome, **host})
        except KeyboardInterrupt as exc:
            # Ctrl+C in a terminal reached the workers too; a kill reached only this process.
            if isinstance(exc, Terminated):
                for process in list(getattr(pool, "_processes", {}).values()):
                    with contextlib.suppress(OSError):
                        os.kill(process.pid, signal.SIGTERM)
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)


_EVENTS = None


def _init_local(events):
    global _EVENTS
    _EVENTS = events


def _local_job(job, threads):
    return execute(job, job.run_dir, threads, lambda e: _EVENTS.put((job.name, e)))


def _drain(events, on_epoch):
    while True:
        try:
            name, epochs = events.get_nowait()
        except queues.Empty:
            return
        on_epoch(name, epochs)


def import_ray():
    try:
        import ray
    except ImportError:
        raise GlyphnetError('--backend ray needs Ray: pip install "glyphnet[ray]" (from a '
                            'checkout: pip install ".[ray]")') from None
    return ray


class RayBackend:
    """Every run a Ray task with ``cpus_per_run`` CPUs (and as many BLAS threads), retried once
    if its worker dies. Tasks train into a temporary folder on whatever node runs them and
    return the run directory's files, which are written here: no shared file system needed.
    ``address``: None starts a Ray on this machine, "auto" joins the cluster RAY_ADDRESS (or a
    local one) names, else the cluster at that address. If Ray is already initialised in this
    process it is used as it is. ``work`` is the function that trains one run
    (execute; tests substitute one that makes its worker die)."""
    name = "ray"

    def __init__(self, address=None, cpus_per_run=1, work=execute):
        import_ray()
        self.address, self.cpus_per_run, self.work = address, cpus_per_run, work

    def run(self, jobs, on_epoch, on_done):
        ray = import_ray()
        started = not ray.is_initialized()
        if started:
            if self.address is None:
                ray.init(num_cpus=os.cpu_count(), include_dashboard=False,
                         logging_level="warning")
            else:
                try:
                    ray.init(address=self.address, logging_level="warning")
                except ConnectionError as exc:
                    raise GlyphnetError(f"--address {self.address}: cannot join the Ray "
                                        f"cluster: {exc}") from None
        try:
            self._run(ray, jobs, on_epoch, on_done)
        finally:
            if started:
                ray.shutdown()

    def _run(self, ray, jobs, on_epoch, on_done):
        from ray.util.queue import Queue
        events = Queue(actor_options={"num_cpus": 0})
        task = ray.remote(num_cpus=self.cpus_per_run, max_retries=1)(_ray_task)
        pending = {task.remote(self.work, job, self.cpus_per_run, events): job for job in jobs}

        def collect(ready):
            for ref in ready:
                job = pending.pop(ref)
                try:
                    files, outcome = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    outcome = _internal(exc.cause if exc.cause is not None else exc)
                except ray.exceptions.RayError as exc:
                    outcome = _failed(f"the run's worker died twice: {type(exc).__name__}: "
                                      f"{str(exc).splitlines()[0]}")
                else:
                    replace_run_dir(job.run_dir, files)
                on_done(job, outcome)

        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=len(pending),
                                    timeout=POLL_SECONDS)
                for name, epochs in events.get_nowait_batch(events.qsize()):
                    on_epoch(name, epochs)
                collect(ready)
        except KeyboardInterrupt:
            ready, rest = ray.wait(list(pending), num_returns=len(pending), timeout=0)
            for ref in rest:
                ray.cancel(ref, force=True)
            collect(ready)
            raise
        finally:
            ray.kill(events.actor)


def _ray_task(work, job, threads, events):
    """The Ray task: train ``job`` in a temporary folder, return its files and the outcome."""
    import ray
    node = ray.get_runtime_context().get_node_id()
    with tempfile.TemporaryDirectory(prefix="glyphnet-run-") as tmp:
        run_dir = os.path.join(tmp, "run")
        write_files(run_dir, job.files)
        outcome = work(job, run_dir, threads, lambda e: events.put_nowait((job.name, e)))
        files = read_files(run_dir)
    return files, {**outcome, "node": node, "hostname": socket.gethostname()}
