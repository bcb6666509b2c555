"""Train the same MLP with glyphnet, PyTorch (CPU) and scikit-learn side by side and print
seconds per epoch, the ratios, and inference images/second.

MLP 784-256-256-10, ReLU, softmax cross-entropy, Adam lr 1e-3, batch 128, float32, on MNIST,
every library limited to the same number of threads.

    python benchmarks/bench_mlp.py                      # 3 epochs x 3 repeats, 2 threads
    python benchmarks/bench_mlp.py --epochs 1 --repeats 1 --skip sklearn
    python benchmarks/bench_mlp.py --train-default      # `glyphnet train` end to end
    python benchmarks/bench_mlp.py --train-default --config configs/mlp_985.toml

Needs the test extras (torch, scikit-learn). Times are medians over the repeats; compare the
ratios, which come from one run on one machine.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

import glyphnet
from glyphnet.nn import backend
from glyphnet import Adam, Dense, ReLU, Sequential, Softmax

HIDDEN = (256, 256)
clock = time.perf_counter        # --cpu-time: time.process_time


def load_data(train_limit):
    ds = glyphnet.load_mnist()
    n = train_limit or len(ds.x_train)
    x_train = ds.x_train[:n].reshape(n, -1)
    x_test = ds.x_test.reshape(len(ds.x_test), -1)
    return x_train, ds.y_train[:n], x_test, ds.y_test


def per_second(n, seconds):
    return n / seconds if seconds > 0 else float("inf")


# ------------------------------------------------------------------------------ glyphnet
def run_glyphnet(x, y, x_test, y_test, epochs, batch_size, infer_batch, seed):
    layers = []
    for units in HIDDEN:
        layers += [Dense(units), ReLU()]
    model = Sequential(layers + [Dense(10, init="glorot_uniform"), Softmax()],
                       input_shape=x.shape[1:], seed=seed)
    model.compile(loss="cross_entropy", optimizer=Adam(1e-3))
    start = clock()
    model.fit(x, y, epochs=epochs, batch_size=batch_size, seed=seed)
    epoch_s = (clock() - start) / epochs
    start = clock()
    model.predict_proba(x_test, batch_size=infer_batch)
    infer_s = clock() - start
    accuracy = model.evaluate(x_test, y_test)["accuracy"]
    return epoch_s, per_second(len(x_test), infer_s), accuracy


# ------------------------------------------------------------------------------ PyTorch
def run_torch(x, y, x_test, y_test, epochs, batch_size, infer_batch, seed):
    import torch
    torch.manual_seed(seed)
    layers, width = [], x.shape[1]
    for units in HIDDEN:
        layers += [torch.nn.Linear(width, units), torch.nn.ReLU()]
        width = units
    model = torch.nn.Sequential(*layers, torch.nn.Linear(width, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    start = clock()
    for _ in range(epochs):
        # Batches sliced from in-memory tensors (no DataLoader): PyTorch's fastest normal use.
        order = torch.randperm(len(xt))
        xs, ys = xt[order], yt[order]
        for i in range(0, len(xs), batch_size):
            opt.zero_grad()
            loss = loss_fn(model(xs[i:i + batch_size]), ys[i:i + batch_size])
            loss.backward()
            opt.step()
    epoch_s = (clock() - start) / epochs
    xtest = torch.from_numpy(x_test)
    with torch.no_grad():
        start = clock()
        logits = torch.cat([model(xtest[i:i + infer_batch])
                            for i in range(0, len(xtest), infer_batch)])
        infer_s = clock() - start
    accuracy = float((logits.argmax(1).numpy() == y_test).mean())
    return epoch_s, per_second(len(x_test), infer_s), accuracy


# ------------------------------------------------------------------------------ scikit-learn
def run_sklearn(x, y, x_test, y_test, epochs, batch_size, infer_batch, seed):
    from sklearn.neural_network import MLPClassifier
    model = MLPClassifier(hidden_layer_sizes=HIDDEN, activation="relu", solver="adam",
                          alpha=0.0, batch_size=batch_size, learning_rate_init=1e-3,
                          shuffle=True, random_state=seed)
    classes = np.arange(10)
    start = clock()
    for _ in range(epochs):
        model.partial_fit(x, y, classes=classes)   # one pass over the data
    epoch_s = (clock() - start) / epochs
    start = clock()
    for i in range(0, len(x_test), infer_batch):
        model.predict_proba(x_test[i:i + infer_batch])
    infer_s = clock() - start
    accuracy = float((model.predict(x_test) == y_test).mean())
    return epoch_s, per_second(len(x_test), infer_s), accuracy


RUNNERS = {"glyphnet": run_glyphnet, "pytorch": run_torch, "sklearn": run_sklearn}


def blas_report(threads):
    lines = []
    for info in threadpool_info():
        lines.append(f"  {info.get('user_api')}: {info.get('internal_api')} "
                     f"{info.get('version') or ''} kernel={info.get('architecture', 'n/a')} "
                     f"threads={info.get('num_threads')} ({os.path.basename(info['filepath'])})")
    if "torch" in sys.modules:
        import torch
        lines.append(f"  torch {torch.__version__}: {torch.get_num_threads()} intra-op threads, "
                     f"BLAS {torch.backends.mkl.is_available() and 'MKL' or 'other'}, "
                     f"oneDNN {torch.backends.mkldnn.is_available()}, "
                     f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    return "\n".join(lines)


def compare(args):
    x, y, x_test, y_test = load_data(args.train_limit)
    names = [n for n in RUNNERS if n not in args.skip]
    if "pytorch" in names:
        import torch
        torch.set_num_threads(args.threads)
    print(f"MLP 784-{'-'.join(map(str, HIDDEN))}-10, ReLU, softmax CE, Adam 1e-3, batch "
          f"{args.batch_size}, float32, {args.threads} threads "
          f"({'CPU' if args.cpu_time else 'wall'} seconds); {len(x)} training images, "
          f"{args.epochs} epoch(s) x {args.repeats} repeat(s); inference batch {args.infer_batch}")
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, NumPy {np.__version__}")
    print(f"load average before timing: {', '.join(f'{v:.1f}' for v in os.getloadavg())} "
          f"(1, 5, 15 minutes; {os.cpu_count()} cores)")
    print("glyphnet: whole batches (models without convolutions are not cut into slices), "
          "BLAS threads for the products, element-wise work on one thread while BLAS has two")
    if backend.blas_kernel_note():
        print("WARNING: " + backend.blas_kernel_note())
    results, runs = {}, {name: [] for name in names}
    with threadpool_limits(args.threads):
        print("BLAS and threads:\n" + blas_report(args.threads))
        # The libraries take turns within each repeat, the first one rotating, so a slower or
        # faster spell of the machine falls on all of them.
        for seed in range(args.repeats):
            k = seed % len(names)
            for name in names[k:] + names[:k]:
                runs[name].append(RUNNERS[name](x, y, x_test, y_test, args.epochs,
                                                args.batch_size, args.infer_batch, seed))
    for name in names:
        epoch_s, infer, acc = (statistics.median(r[i] for r in runs[name]) for i in range(3))
        results[name] = (epoch_s, infer, acc)
        print(f"{name:>9}: {epoch_s:6.3f} s/epoch (runs: "
              f"{', '.join(f'{r[0]:.3f}' for r in runs[name])}), inference {infer:9.0f} img/s, "
              f"test accuracy {acc:.4f} after {args.epochs} epoch(s)")
    print(f"load average after timing: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    g = results.get("glyphnet")
    for other in ("pytorch", "sklearn"):
        if g and other in results:
            print(f"glyphnet/{other}: training time ratio {g[0] / results[other][0]:.2f} "
                  f"(<1 = glyphnet faster), inference speed ratio "
                  f"{g[1] / results[other][1]:.2f} (>1 = glyphnet faster)")


def train_default(args):
    """`glyphnet train [CONFIG]` as a user runs it: wall time including data loading."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "glyphnet.cli", "train", "--out", out]
        if args.config:
            cmd.insert(4, args.config)
        print("$ glyphnet train" + (f" {args.config}" if args.config else "") + " --out RUN_DIR")
        start = time.perf_counter()
        subprocess.run(cmd, check=True)
        wall = time.perf_counter() - start
        with open(os.path.join(out, "metrics.json")) as f:
            metrics = json.load(f)
    print(f"BLAS:\n{blas_report(None)}")
    print(f"wall time {wall:.1f} s (training loop {metrics['seconds']:.1f} s), "
          f"{metrics['epochs']} epochs, test accuracy {metrics['test_accuracy']:.4f}, "
          f"train accuracy {metrics['train_accuracy']:.4f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--infer-batch", type=int, default=1000,
                   help="images per inference call, the same for every library")
    p.add_argument("--train-limit", type=int, default=0, help="use the first N training images")
    p.add_argument("--skip", nargs="*", default=[], choices=list(RUNNERS))
    p.add_argument("--train-default", action="store_true",
                   help="time `glyphnet train` end to end instead")
    p.add_argument("--config", help="with --train-default: the config to train")
    p.add_argument("--cpu-time", action="store_true",
                   help="one thread everywhere and CPU seconds instead of wall seconds: what "
                        "an idle core would take, however busy the machine is")
    args = p.parse_args()
    if args.cpu_time:
        global clock
        clock, args.threads = time.process_time, 1
        backend.CORES = 1       # glyphnet's element-wise work on this thread too
    if args.train_default:
        train_default(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()
