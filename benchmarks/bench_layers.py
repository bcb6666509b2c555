"""The layer-level choices of glyphnet's CPU path, each timed side by side with the plain
alternative it replaced, in one run (medians):

  rectifiers  ReLU's max(x, 0) against a scalar vs against backend.zeros_like; LeakyReLU by
              np.where vs max(x, slope x) (forward) and max([x > 0], slope) (gradient factor)
  windows     a Conv2D + ReLU + 2x2 max pooling step, plain (conv, pooling, then the ReLU) vs
              window by window (Conv2D.forward_windows), forward and backward, one thread
  mlp         the 784-256-256-10 MLP's epoch (Adam, batch 128, two threads) as it trains, with
              the scalar-max ReLU, with the parameters not packed into one buffer (Adam array by
              array), with Adam split over two threads, and cut into two slices
  adam        one Adam step on the MLP's six arrays (BLAS on two threads, as in its training):
              each array on its own vs packed into one buffer (Sequential packs them)
  leaky       40 batches of report 001's leaky-ReLU CNN (configs/cnn_8_16.toml), np.where vs
              the max form

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_layers.py
    python benchmarks/bench_layers.py --only windows,rectifiers

Every variant computes the same values (tests/test_layers.py, tests/test_pool_first.py); only
the time differs. Prints the BLAS kernel in use.
"""
import argparse
import contextlib
import os
import time
import tomllib

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

import glyphnet as g
from glyphnet import Adam, Dense, ReLU, Sequential, Softmax
from glyphnet.nn import backend, layers, parallel
from glyphnet.nn.layers import layer_from_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def median_us(fn, repeats=300):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e6 * float(np.median(times[repeats // 10:]))


def rectifiers():
    rng = np.random.default_rng(0)
    print("rectifiers (us, median of 300 calls, one thread)")
    for shape in ((128, 256), (64, 28, 28, 8)):
        x = rng.standard_normal(shape).astype(np.float32)
        y, mask, dy = np.empty_like(x), x > 0, x[::-1].copy()
        zeros, s = backend.zeros_like(x), 0.01
        rows = [("ReLU max(x, 0)", lambda: np.maximum(x, 0, out=y)),
                ("ReLU max(x, zeros)", lambda: np.maximum(x, zeros, out=y)),
                ("leaky forward np.where", lambda: np.where(mask, x, x * s)),
                ("leaky forward max(x, s x)", lambda: np.maximum(x, x * s)),
                ("leaky gradient np.where", lambda: np.where(mask, dy, dy * s)),
                ("leaky gradient dy max([x>0], s)",
                 lambda: dy * np.maximum(mask, s, dtype=x.dtype))]
        for name, fn in rows:
            print(f"  {str(shape):<16} {name:<34} {median_us(fn):9.1f}")


def conv_steps(name):
    if name == "lenet":
        return [((28, 28, 1), 32, 5), ((12, 12, 32), 64, 5)]
    return [((28, 28, 1), 8, 3), ((13, 13, 8), 16, 3)]


def windows(n_images=(64, 128), steps=30):
    print("conv + ReLU + 2x2 max pool, ms per step (median of 30), one thread: "
          "plain (conv, pool, ReLU) vs window by window")
    rng = np.random.default_rng(0)
    for name in ("lenet", "small"):
        for i, (shape, filters, kernel) in enumerate(conv_steps(name)):
            conv, relu, pool = g.Conv2D(filters, kernel), ReLU(), g.MaxPool2D(2)
            out = conv.build(shape, rng)
            pool.build(out, rng)
            relu.build(pool.output_shape, rng)
            for n in n_images:
                x = np.maximum(rng.standard_normal((n,) + shape), 0).astype(np.float32)
                dy = rng.standard_normal((n,) + pool.output_shape).astype(np.float32)
                back = conv.backward_params if i == 0 else conv.backward   # as in training
                plain = (lambda: relu.forward(pool.forward(conv.forward(x, True), True), True),
                         lambda: back(pool.backward(relu.backward(dy))))
                wins = (lambda: relu.forward(pool.forward_windows(conv.forward_windows(x, True),
                                                                  True), True),
                        lambda: back(pool.backward_windows(relu.backward(dy))))
                figures = []
                for forward, backward in (plain, wins):
                    f, b = [], []
                    for _ in range(steps):
                        start = time.perf_counter()
                        forward()
                        f.append(time.perf_counter() - start)
                        start = time.perf_counter()
                        backward()
                        b.append(time.perf_counter() - start)
                    figures += [1000 * np.median(f[3:]), 1000 * np.median(b[3:])]
                print(f"  {name:<6} conv{i + 1} {n:>4} images: plain {figures[0]:.2f} + "
                      f"{figures[1]:.2f}, windows {figures[2]:.2f} + {figures[3]:.2f}")


def adam(repeats=5):
    rng = np.random.default_rng(0)
    shapes = [(784, 256), (256,), (256, 256), (256,), (256, 10), (10,)]
    values = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [0.01 * rng.standard_normal(s).astype(np.float32) for s in shapes]
    layouts = {"each array on its own": (values, grads),
               "packed into one buffer": (backend.pack(values), backend.pack(grads))}
    times = {name: [] for name in layouts}
    with threadpool_limits(2):
        for _ in range(repeats):
            for name, (p, gr) in layouts.items():
                opt = Adam()
                times[name].append(median_us(lambda: opt.step(p, gr), 1000))
    print(f"Adam step on the 784-256-256-10 MLP's arrays, us (median of 1000 steps, "
          f"{repeats} alternating rounds)")
    for name, v in times.items():
        print(f"  {name:<34} {np.median(v):7.1f}  ({', '.join(f'{t:.1f}' for t in v)})")
    # In place like the real passes; the written array is reset (untimed) before each call, so
    # repeating a pass does not compound (the values would decay into slow subnormals).
    p, gr = backend.pack(values)[0].base, backend.pack(grads)[0].base
    m, v, s = 0.1 * gr, 0.001 * gr * gr, np.sqrt(0.001 * gr * gr) + 1e-8
    passes = [("m *= b1", m, lambda: np.multiply(m, 0.9, out=m)),
              ("s = (1 - b1) g", s, lambda: np.multiply(gr, 0.1, out=s)),
              ("m += s", m, lambda: np.add(m, s, out=m)),
              ("v *= b2", v, lambda: np.multiply(v, 0.999, out=v)),
              ("s = g g", s, lambda: np.multiply(gr, gr, out=s)),
              ("s *= 1 - b2", s, lambda: np.multiply(s, 0.001, out=s)),
              ("v += s", v, lambda: np.add(v, s, out=v)),
              ("s = sqrt(v)", s, lambda: np.sqrt(v, out=s)),
              ("s += eps", s, lambda: np.add(s, 1e-8, out=s)),
              ("s = m / s", s, lambda: np.divide(m, s, out=s)),
              ("s *= lr", s, lambda: np.multiply(s, 1e-3, out=s)),
              ("p -= s", p, lambda: np.subtract(p, s, out=p))]
    figures = []
    for name, written, fn in passes:
        start, spent = written.copy(), []
        for _ in range(1000):
            written[...] = start
            t = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - t)
        written[...] = start
        figures.append(f"{name} {1e6 * np.median(spent):.1f}")
    print(f"  its 12 passes over the {p.size} packed values, in place, us (median of 1000):")
    print("   " + ", ".join(figures))


def mlp_epoch(x, y):
    model = Sequential([Dense(256), ReLU(), Dense(256), ReLU(),
                        Dense(10, init="glorot_uniform"), Softmax()],
                       input_shape=(784,), seed=0).compile("cross_entropy", Adam(1e-3))
    start = time.perf_counter()
    model.fit(x, y, epochs=1, batch_size=128, seed=0)
    return time.perf_counter() - start


@contextlib.contextmanager
def patched(obj, name, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def mlp(repeats=4):
    ds = g.load_mnist()
    x, y = ds.x_train.reshape(len(ds.x_train), -1), ds.y_train
    variants = {
        "as it trains": contextlib.nullcontext,
        "ReLU max(x, 0) against a scalar":
            lambda: patched(layers, "_relu", lambda a, out: np.maximum(a, 0, out=out)),
        "parameters not packed (Adam per array)":
            lambda: patched(Sequential, "_pack", lambda self: None),
        "Adam split over two threads":
            lambda: patched(backend, "_split_worth_it", lambda size: size >= 2 * backend.SPLIT_SIZE),
        "batches cut into two slices":
            lambda: patched(parallel, "parts_for",
                            lambda model, n, threads, training=True: max(1, min(threads, n // 32)))}
    times = {k: [] for k in variants}
    names = list(variants)
    with threadpool_limits(2):
        mlp_epoch(x[:12800], y[:12800])           # warm-up, not timed
        for r in range(repeats):      # the variants alternate, in a rotated order each repeat
            for name in names[r % len(names):] + names[:r % len(names)]:
                with variants[name]():
                    times[name].append(mlp_epoch(x, y))
    print(f"MLP 784-256-256-10, s/epoch (median of {repeats}, two threads)")
    for name, v in times.items():
        print(f"  {name:<40} {np.median(v):.3f}  ({', '.join(f'{t:.3f}' for t in v)})")


class WhereLeakyReLU(layers.LeakyReLU):
    """The np.where form, for timing."""

    def forward(self, x, training=False):
        self.mask = x > 0
        return np.where(self.mask, x, x * self.negative_slope)

    def backward(self, dy):
        return np.where(self.mask, dy, dy * self.negative_slope)


def leaky(repeats=3, batches=40):
    with open(os.path.join(ROOT, "configs", "cnn_8_16.toml"), "rb") as f:
        spec = tomllib.load(f)["model"]["layers"]
    ds = g.load_mnist()
    x, y = ds.x_train[:128 * batches], ds.y_train[:128 * batches]
    times = {"np.where": [], "max(x, s x)": []}
    for _ in range(repeats):
        for name in times:
            net = [layer_from_config(s) for s in spec]
            if name == "np.where":
                net = [WhereLeakyReLU(l.negative_slope) if isinstance(l, layers.LeakyReLU)
                       else l for l in net]
            model = Sequential(net, input_shape=(28, 28, 1), seed=0).compile()
            start = time.perf_counter()
            model.fit(x, y, epochs=1, batch_size=128)
            times[name].append(time.perf_counter() - start)
    print(f"cnn_8_16 (leaky ReLU), s per {batches} batches of 128 (median of {repeats})")
    for name, v in times.items():
        print(f"  {name:<34} {np.median(v):.3f}  ({', '.join(f'{t:.3f}' for t in v)})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="rectifiers,windows,mlp,adam,leaky")
    args = parser.parse_args()
    for info in threadpool_info():
        print(f"BLAS: {info.get('internal_api')} {info.get('version')} kernel "
              f"{info.get('architecture')} threads {info.get('num_threads')}")
    if backend.blas_kernel_note():
        print("WARNING: " + backend.blas_kernel_note())
    print(f"load average before: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    for part in args.only.split(","):
        if part in ("rectifiers", "windows"):
            with threadpool_limits(1), patched(backend, "CORES", 1):
                globals()[part]()
        else:
            globals()[part]()


if __name__ == "__main__":
    main()
