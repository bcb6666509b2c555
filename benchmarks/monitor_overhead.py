"""What the training-dynamics monitor (glyphnet.monitor.Monitor, run by every ``glyphnet
train``) costs on the default MLP (784-256-256-10, Adam, batch 128, MNIST).

Per-call costs are the minimum over repeats (robust on a shared machine): one training step,
one sampled step of the monitor (gradient std of each layer and the tracked weights) and one
gradient check. From them: the monitor's share of an epoch of 469 steps, for the first epoch
(gradient checks at steps 1, 8, 64) and for later ones. ``--compare`` also times whole epochs
with and without the monitor, alternating (medians; noisy when the machine is busy).

    python benchmarks/monitor_overhead.py [--threads 1] [--every 10] [--compare 3]
"""
import argparse
import time
import timeit

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from glyphnet import runs
from glyphnet.config import load_config
from glyphnet.monitor import Monitor


def best(fn, repeat):
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads (default: all)")
    parser.add_argument("--every", type=int, default=10, help="monitor sampling interval")
    parser.add_argument("--compare", type=int, default=0, metavar="N",
                        help="also time N whole epochs with and without the monitor")
    args = parser.parse_args()
    cfg = load_config(None, {"training.epochs": 1})
    model, ds, x, _ = runs.prepare(cfg)
    y = ds.y_train
    with threadpool_limits(args.threads):
        blas = [(i.get("internal_api"), i.get("architecture"), i.get("num_threads"))
                for i in threadpool_info()]
        model.fit(x[:1280], y[:1280], epochs=1, batch_size=128)        # warm up
        monitor = Monitor(every=args.every, check_data=(x[:4], y[:4]))
        monitor.on_epoch_begin(model, 1)
        step = best(lambda: model.fit(x[:128], y[:128], epochs=1, batch_size=128), 30)
        sample = best(lambda: monitor.on_batch_end(model, args.every, 0.0), 30)
        check = best(lambda: monitor._gradient_check(model, 8), 8)
        steps = -(-len(x) // 128)
        later = steps / args.every * sample
        first = later + 3 * check
        print(f"BLAS: {blas}; monitor every {args.every} steps")
        print(f"training step {step * 1e3:.2f} ms, monitor sample {sample * 1e3:.2f} ms, "
              f"gradient check {check * 1e3:.1f} ms (minimum of repeats)")
        epoch = steps * step
        print(f"monitor share of an epoch ({steps} steps): first epoch "
              f"{100 * first / epoch:.1f}%, later epochs {100 * later / epoch:.1f}%")
        if args.compare:
            times = {False: [], True: []}
            for _ in range(args.compare):
                for with_monitor in (False, True):
                    model, *_ = runs.prepare(cfg)
                    cbs = [Monitor(every=args.every, check_data=(x[:4], y[:4]))] \
                        if with_monitor else []
                    start = time.perf_counter()
                    model.fit(x, y, epochs=1, batch_size=128, callbacks=cbs)
                    times[with_monitor].append(time.perf_counter() - start)
            print(f"whole epoch without / with monitor: medians {np.median(times[False]):.2f}s / "
                  f"{np.median(times[True]):.2f}s (runs {np.round(times[False], 2)} / "
                  f"{np.round(times[True], 2)})")


if __name__ == "__main__":
    main()
