"""Seconds per training epoch of two CNNs, glyphnet (NumPy) vs PyTorch CPU, side by side.

Same model, data (MNIST), batch size (128), optimiser (Adam, lr 1e-3) and threads (2) for both;
the two frameworks alternate within each repeat and the medians are compared. Also prints the
BLAS kernels in use, the peak memory of a glyphnet training run and (unless --no-train) the wall
time and test accuracy of a fresh ``glyphnet train configs/fast99.toml``.

    python benchmarks/bench_cnn.py             # full epochs, 3 repeats (about 10 minutes)
    python benchmarks/bench_cnn.py --quick     # 60 batches per timing, epoch time extrapolated
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits

import glyphnet as g
from glyphnet.nn import backend
from glyphnet.nn.model import plan_steps
from glyphnet import Dense, ReLU, Softmax

clock = time.perf_counter        # --cpu-time: time.process_time
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH = 128
THREADS = 2


def glyphnet_model(name):
    if name == "lenet":
        layers = [g.Conv2D(32, 5), ReLU(), g.MaxPool2D(2), g.Conv2D(64, 5), ReLU(),
                  g.MaxPool2D(2), Dense(128), ReLU(), Dense(10), Softmax()]
    else:
        layers = [g.Conv2D(8, 3), ReLU(), g.MaxPool2D(2), g.Conv2D(16, 3), ReLU(),
                  g.MaxPool2D(2), Dense(10), Softmax()]
    model = g.Sequential(layers, input_shape=(28, 28, 1), seed=0)
    return model.compile("cross_entropy", g.Adam(1e-3))


def torch_model(name):
    nn = torch.nn
    if name == "lenet":
        return nn.Sequential(nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 5),
                             nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1024, 128),
                             nn.ReLU(), nn.Linear(128, 10))
    return nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 5 * 5, 10))


def time_glyphnet(name, x, y):
    model = glyphnet_model(name)
    start = clock()
    model.fit(x, y, epochs=1, batch_size=BATCH, shuffle=True, seed=0)
    return clock() - start


def time_torch(name, x, y):
    torch.manual_seed(0)
    model = torch_model(name)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    start = clock()
    order = torch.randperm(len(x))
    for i in range(0, len(x), BATCH):
        idx = order[i:i + BATCH]
        opt.zero_grad()
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
    return clock() - start


def peak_memory(name, x, y):
    """Peak bytes allocated (tracemalloc sees NumPy's arrays) while training on (x, y)."""
    model = glyphnet_model(name)
    tracemalloc.start()
    model.fit(x, y, epochs=1, batch_size=BATCH)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def layer_times(name, x, y, steps=20):
    """Median milliseconds per step of the model's plan (a layer, or the layers the model
    runs together: a convolution handing its outputs to the max pooling window by window,
    a ReLU run after the pooling), forward and backward, over training steps."""
    model = glyphnet_model(name)
    times = {}

    def timed(key, fn, *args):
        start = clock()
        out = fn(*args)
        times.setdefault(key, []).append(clock() - start)
        return out
    for s in range(min(steps, len(x) // BATCH)):
        xb, yb = x[s * BATCH:(s + 1) * BATCH], y[s * BATCH:(s + 1) * BATCH]
        plan = plan_steps(model.layers[:-1])    # the softmax is fused into the loss
        for step in plan:                       # forward step by step, as model.forward
            xb = timed((step[1], "forward"), model.forward_step, step, xb, True)
        _, d = model.loss(xb, yb)
        for step in reversed(plan):             # no input gradient for the first layer
            d = timed((step[1], "backward"), model.backward_step, step, d, 0, False)
        model.optimizer.step([p for _, _, p, _ in model.parameters()],
                             [gr for _, _, _, gr in model.parameters()])
    names = {idx: "+".join(type(model.layers[i]).__name__ for i in idx) for idx, _ in times}
    return names, {k: 1000 * float(np.median(v)) for k, v in times.items()}


def fast99():
    """Wall time and test accuracy of a fresh `glyphnet train configs/fast99.toml`."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "glyphnet.cli", "train",
                               os.path.join(ROOT, "configs", "fast99.toml"), "--out", out],
                              capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode:
            print(proc.stdout, proc.stderr)
            raise SystemExit("glyphnet train configs/fast99.toml failed")
        with open(os.path.join(out, "metrics.json")) as f:
            metrics = json.load(f)
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return wall, metrics, rss


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="time 60 batches instead of full epochs and extrapolate")
    parser.add_argument("--batches", type=int, default=60, help="batches per --quick timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="lenet,small")
    parser.add_argument("--no-train", action="store_true",
                        help="skip the `glyphnet train configs/fast99.toml` run")
    parser.add_argument("--layers", action="store_true", help="print per-layer timings")
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--cpu-time", action="store_true",
                        help="one thread everywhere and CPU seconds instead of wall seconds: "
                             "what an idle core would take, however busy the machine is")
    args = parser.parse_args()

    global clock
    threads = args.threads
    if args.cpu_time:
        clock, threads = time.process_time, 1
        backend.CORES = 1       # glyphnet's element-wise work on this thread too
    torch.set_num_threads(threads)
    threadpool_limits(threads)
    ds = g.load_mnist()
    x, y = ds.x_train, ds.y_train
    n_epoch = len(x)
    if args.quick:
        x, y = x[:args.batches * BATCH], y[:args.batches * BATCH]
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    yt = torch.from_numpy(y.astype(np.int64))
    scale = n_epoch / len(x)

    print(f"numpy {np.__version__}, torch {torch.__version__}, threads {threads}, "
          f"{'CPU' if args.cpu_time else 'wall'} seconds, "
          f"batch {BATCH}, Adam lr 1e-3, MNIST {n_epoch} training images")
    for info in threadpool_info():
        print(f"  BLAS: {info.get('internal_api')} {info.get('version')} "
              f"kernel {info.get('architecture')} threads {info.get('num_threads')} "
              f"({os.path.basename(info.get('filepath', ''))})")
    print(f"  torch: {torch.get_num_threads()} threads, MKL {torch.backends.mkl.is_available()}, "
          f"oneDNN {torch.backends.mkldnn.is_available()}")
    print(f"  load average before timing: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print(f"  glyphnet: batches cut into 2 slices (nn/parallel.py), "
          f"{'run in turn' if backend.thread_budget() < 2 else 'run on 2 threads at once'} "
          f"(in turn on one thread or while the load is above cores + 0.5)")
    if backend.blas_kernel_note():
        print("  WARNING: " + backend.blas_kernel_note())
    mode = f"--quick: {len(x)} images per timing, scaled to an epoch" if args.quick \
        else "full epochs"
    print(f"timing: {mode}, {args.repeats} repeats, medians\n")
    print(f"{'model':<8}{'glyphnet s/epoch':>18}{'PyTorch s/epoch':>17}{'ratio':>8}"
          f"{'peak MB':>9}{'ratio of fastest runs':>23}")
    for name in args.models.split(","):
        ours, theirs = [], []
        for _ in range(args.repeats):
            ours.append(time_glyphnet(name, x, y) * scale)
            theirs.append(time_torch(name, xt, yt) * scale)
        a, b = float(np.median(ours)), float(np.median(theirs))
        peak = peak_memory(name, x[:20 * BATCH], y[:20 * BATCH]) / 2**20
        fastest = min(ours) / min(theirs)
        print(f"{name:<8}{a:>18.2f}{b:>17.2f}{a / b:>8.2f}{peak:>9.0f}{fastest:>23.2f}",
              flush=True)
        print(f"    every repeat: glyphnet {', '.join(f'{v:.1f}' for v in ours)}; "
              f"PyTorch {', '.join(f'{v:.1f}' for v in theirs)}")
        if args.layers:
            names, times = layer_times(name, x, y)
            for (idx, d), ms in sorted(times.items()):
                print(f"    {idx[0]:>2} {names[idx]:<26} {d:<9}{ms:8.2f} ms")
    print(f"  load average after timing: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    if not args.no_train:
        wall, metrics, rss = fast99()
        print(f"\nglyphnet train configs/fast99.toml: {wall:.1f} s wall (training "
              f"{metrics['seconds']:.1f} s, {metrics['epochs']} epochs), test accuracy "
              f"{100 * metrics['test_accuracy']:.2f}%, peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
