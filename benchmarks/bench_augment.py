"""Extra time per MLP training epoch on MNIST from on-the-fly augmentation.

Trains the same MLP for one epoch without augmentation and one epoch with it, alternating, and
prints the median epoch times over the repeats and their ratio (goal for elastic distortion:
under 1.5, i.e. less than 50% extra). Also times the augmentation alone on the same batches.

    python benchmarks/bench_augment.py                   # 784-256-256-10, elastic 34/4
    python benchmarks/bench_augment.py --hidden 1024 1024  # the MLP of mnist_mlp_elastic.toml
    python benchmarks/bench_augment.py --augment rotate   # another transform
"""
import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_info

from glyphnet import Dense, ReLU, Sequential, Softmax
from glyphnet import augment as A
from glyphnet.data import load_mnist

TRANSFORMS = {
    "elastic": lambda: A.Elastic(34.0, 4.0),
    "rotate": lambda: A.Rotate(10.0),
    "shift": lambda: A.Shift(2),
    "noise": lambda: A.GaussianNoise(0.1),
    "abs_uniform_noise": lambda: A.AbsUniformNoise(1.0),
    "elastic+rotate+shift": lambda: A.Compose([A.Elastic(34.0, 4.0), A.Rotate(10.0),
                                               A.Shift(2)]),
}


def epoch_seconds(x, y, hidden, batch_size, augment, seed):
    layers = []
    for units in hidden:
        layers += [Dense(units), ReLU()]
    model = Sequential(layers + [Dense(10, init="glorot_uniform"), Softmax()],
                       input_shape=x.shape[1:], seed=seed)
    model.compile()
    start = time.perf_counter()
    model.fit(x, y, epochs=1, batch_size=batch_size, seed=seed, augment=augment)
    return time.perf_counter() - start


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--augment", choices=sorted(TRANSFORMS), default="elastic")
    args = p.parse_args()

    for info in threadpool_info():
        print(f"BLAS: {info.get('internal_api')} {info.get('version')} kernel "
              f"{info.get('architecture')} threads {info.get('num_threads')}")
    ds = load_mnist()
    x, y = ds.x_train, ds.y_train
    transform = TRANSFORMS[args.augment]()
    print(f"MLP 784-{'-'.join(map(str, args.hidden))}-10, Adam, batch {args.batch_size}, "
          f"{len(x)} MNIST images, augmentation: {transform!r}")

    plain, augmented = [], []
    for r in range(args.repeats):
        plain.append(epoch_seconds(x, y, args.hidden, args.batch_size, None, r))
        augmented.append(epoch_seconds(x, y, args.hidden, args.batch_size, transform, r))
        print(f"  repeat {r + 1}: plain {plain[-1]:.2f} s, augmented {augmented[-1]:.2f} s")

    rng = np.random.default_rng(0)
    alone = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for i in range(0, len(x), args.batch_size):
            transform(x[i:i + args.batch_size], rng)
        alone.append(time.perf_counter() - start)

    t0, t1 = statistics.median(plain), statistics.median(augmented)
    print(f"median epoch: plain {t0:.2f} s, with {args.augment} {t1:.2f} s, ratio {t1 / t0:.2f} "
          f"({100 * (t1 / t0 - 1):+.0f}%); augmentation alone {statistics.median(alone):.2f} s "
          f"per epoch")


if __name__ == "__main__":
    main()
