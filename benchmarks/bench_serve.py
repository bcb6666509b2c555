"""Latency of POST /api/predict on a real loopback server (werkzeug, threaded), as the drawing
pad uses it: 280x280 PNG canvases of MNIST test digits drawn dark on white.

    python benchmarks/bench_serve.py [--model MODEL.npz] [--requests 400] [--threads 1 8]

Without --model it serves an MLP 784-256-256-10 with random weights (the latency does not depend
on what the weights are). Prints p50/p90/p99 latency and requests per second for each number of
client threads, and the BLAS library NumPy used.
"""
import argparse
import base64
import io
import json
import os
import platform
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image
from threadpoolctl import threadpool_info
from werkzeug.serving import make_server

from glyphnet import Dense, ReLU, Sequential, Softmax, load_mnist
from glyphnet.web.server import create_app


def canvas_png(digit):
    """A 28x28 MNIST digit drawn like the pad's canvas: 280x280, dark ink on white."""
    big = Image.fromarray(np.round(255 * (1 - digit)).astype(np.uint8), "L").resize((280, 280))
    buf = io.BytesIO()
    big.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model.npz to serve (default: an untrained MLP)")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()

    mnist = load_mnist()
    if args.model:
        model = Sequential.load(args.model)
    else:
        model = Sequential([Dense(256), ReLU(), Dense(256), ReLU(), Dense(10), Softmax()],
                           input_shape=(28, 28, 1), classes=mnist.classes)
    bodies = [json.dumps({"image": canvas_png(d)}).encode() for d in mnist.x_test[:50, :, :, 0]]
    server = make_server("127.0.0.1", 0, create_app({"model": model}), threaded=True)
    server.RequestHandlerClass.log_request = lambda *a, **k: None   # keep the output readable
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/api/predict"

    def call(i):
        request = urllib.request.Request(url, data=bodies[i % len(bodies)],
                                         headers={"Content-Type": "application/json"})
        start = time.perf_counter()
        with urllib.request.urlopen(request, timeout=60) as r:
            assert r.status == 200 and json.load(r)["prediction"] is not None
        return time.perf_counter() - start

    blas = [f"{i['internal_api']} {i.get('version')} ({i.get('architecture')}, "
            f"{i['num_threads']} threads)" for i in threadpool_info() if i["user_api"] == "blas"]
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, BLAS: {', '.join(blas)}")
    print(f"model: {args.model or 'untrained MLP 784-256-256-10'}; request: 280x280 PNG "
          f"({np.mean([len(b) for b in bodies]) / 1024:.1f} KiB JSON body)")
    for _ in range(20):   # warm up
        call(0)
    for threads in args.threads:
        start = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            ms = np.array(list(pool.map(call, range(args.requests)))) * 1000
        wall = time.perf_counter() - start
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        print(f"{threads:>2} client thread(s), {args.requests} requests: p50 {p50:.1f} ms, "
              f"p90 {p90:.1f} ms, p99 {p99:.1f} ms, {args.requests / wall:.0f} requests/s")
    server.shutdown()


if __name__ == "__main__":
    main()
