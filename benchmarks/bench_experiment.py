"""The same small experiment on local processes and on a local Ray, side by side, with Ray's
start-up overhead, and what its figures say about the full-data Toeplitz study.

The experiment: configs/arch_b.toml (the Toeplitz report's architecture B: 16 7x7 filters,
dense 128, tanh, MSE, per-sample SGD) for 1 epoch on the first --train-limit training images
(1000 test images), over 4 learning rates x --seeds seeds (8 runs by default). Local: --jobs
processes with cores / jobs BLAS threads each; Ray: a local Ray with all cores, 1 CPU per run.

    python benchmarks/bench_experiment.py                  # 8 runs, 1000 images, 2 jobs
    python benchmarks/bench_experiment.py --train-limit 300 --seeds 1

Needs Ray (pip install ".[ray]"). The extrapolation to the full-data study times per-sample SGD
steps of arch_b on --train-limit images and one evaluation of the 10000 test images, and
assumes an epoch over all 60000 images costs 60000 such steps plus that evaluation.
"""
import argparse
import math
import os
import tempfile
import time

from glyphnet.experiments import LocalBackend, RayBackend, comparable, run_experiment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LRS = [0.0005, 0.001, 0.002, 0.005]
MNIST_TRAIN = 60000
# The Toeplitz report's full-data table: four runs of 250 epochs over all of MNIST.
STUDY_RUNS, STUDY_EPOCHS = 4, 250


def write_experiment(folder, train_limit, seeds):
    path = os.path.join(folder, "bench.toml")
    with open(path, "w") as f:
        f.write(f"""name = "bench"
base = "{os.path.join(ROOT, 'configs', 'arch_b.toml')}"
seeds = {list(range(seeds))}
[set]
"training.epochs" = 1
"data.train_limit" = {train_limit}
"data.test_limit" = 1000
[grid]
"optimizer.lr" = {LRS}
""")
    return path


def timed(path, out, backend):
    start = time.perf_counter()
    results = run_experiment(path, out, backend=backend, log=lambda *a: None)
    wall = time.perf_counter() - start
    failed = [f"{r['run']}: {r['error']}" for r in results["runs"] if r["status"] != "done"]
    if failed:
        raise SystemExit(f"{backend.name}: runs did not finish:\n" + "\n".join(failed))
    return wall, sum(r["seconds"] for r in results["runs"]), results


def study_epoch_parts(train_images):
    """(seconds per per-sample SGD step of arch_b, seconds to evaluate the 10000 MNIST test
    images), on one BLAS thread as a run with 1 CPU gets."""
    from threadpoolctl import threadpool_limits

    from glyphnet import runs
    from glyphnet.config import load_config
    cfg = load_config(os.path.join(ROOT, "configs", "arch_b.toml"),
                      {"data.train_limit": train_images, "data.test_limit": 0})
    model, ds, x_train, x_test = runs.prepare(cfg)
    with threadpool_limits(1):
        start = time.perf_counter()
        model.fit(x_train, ds.y_train, epochs=1, batch_size=1, seed=0, verbose=False)
        step = (time.perf_counter() - start) / len(x_train)
        start = time.perf_counter()
        model.evaluate(x_test, ds.y_test)
        test = time.perf_counter() - start
    return step, test


def _hours(seconds):
    return f"{seconds / 3600:.1f} h"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-limit", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    import ray

    cores = os.cpu_count()
    runs = len(LRS) * args.seeds
    with tempfile.TemporaryDirectory() as tmp:
        path = write_experiment(tmp, args.train_limit, args.seeds)
        local_wall, local_sum, local = timed(path, os.path.join(tmp, "local"),
                                             LocalBackend(args.jobs))
        start = time.perf_counter()
        ray.init(num_cpus=cores, include_dashboard=False, logging_level="warning")
        init = time.perf_counter() - start
        try:
            ray_wall, ray_sum, remote = timed(path, os.path.join(tmp, "ray"),
                                              RayBackend(cpus_per_run=1))
        finally:
            start = time.perf_counter()
            ray.shutdown()
            shutdown = time.perf_counter() - start

    print(f"{runs} runs x 1 epoch of arch_b per-sample SGD on {args.train_limit} images, "
          f"{cores} cores (load average over the last 5 min: {os.getloadavg()[1]:.1f})")
    print(f"{'':28}{'local processes':>18}{'local Ray':>12}")
    print(f"{'parallel runs':28}{args.jobs:>18}{cores:>12}")
    print(f"{'Ray start / shutdown (s)':28}{'-':>18}{f'{init:.1f} / {shutdown:.1f}':>12}")
    print(f"{'experiment wall time (s)':28}{local_wall:>18.1f}{ray_wall:>12.1f}")
    print(f"{'sum of run training (s)':28}{local_sum:>18.1f}{ray_sum:>12.1f}")
    print(f"{'overhead per run (s)':28}"
          f"{local_wall * args.jobs / runs - local_sum / runs:>18.2f}"
          f"{ray_wall * cores / runs - ray_sum / runs:>12.2f}")
    print(f"same results.json (timing and node fields left out): "
          f"{comparable(local) == comparable(remote)}")

    step, test = study_epoch_parts(args.train_limit)
    epoch = step * MNIST_TRAIN + test
    run = epoch * STUDY_EPOCHS
    print(f"\nToeplitz study ({STUDY_RUNS} runs x {STUDY_EPOCHS} epochs over {MNIST_TRAIN} "
          f"images), extrapolated from one arch_b epoch on {args.train_limit} images on one "
          f"thread ({1000 * step:.2f} ms per SGD step) and one evaluation of the 10000 test "
          f"images ({test:.1f} s):")
    print(f"  one epoch {epoch / 60:.0f} min, one run {_hours(run)}, all runs one after "
          f"another {_hours(STUDY_RUNS * run)}")
    for machines in (1, 2, 4):
        slots = machines * cores
        rounds = math.ceil(STUDY_RUNS / slots)
        print(f"  {machines} machine(s) of {cores} cores, 1 CPU per run: {min(slots, STUDY_RUNS)}"
              f" at a time, {rounds} round(s), about {_hours(rounds * run)}")


if __name__ == "__main__":
    main()
