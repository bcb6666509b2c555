"""Training steps split over threads: data parallelism inside one process.

A batch of n samples is cut along the batch axis into ``parts`` slices of n_k samples. Each
slice runs forward, loss and backward on its own replica of the layers, which shares the
weights (the same arrays) but keeps its own activations, buffers and gradients. The loss is a
mean over the samples, so

    L = sum_k (n_k / n) L_k,        dL/dw = sum_k (n_k / n) dL_k/dw,

and that is what a step returns and leaves in the model's gradients. The slices' products
run on one BLAS thread each and NumPy releases the GIL inside them, so two slices keep two
cores busy with whole layers, not only with the pieces of work a layer splits itself.

The numbers depend on the batch size and ``parts`` alone: the slices are the same, and
computed the same way, whether they run at once or one after another (a busy machine, an
experiment running two jobs on two cores, a BLAS limited to one thread). A step split in two
sums each weight gradient in another order than a whole-batch step, so the two differ by
float rounding (tests/test_parallel.py).

Dropout masks are drawn for the whole batch first, in layer order, as a whole-batch step
draws them, and each slice gets its rows. A layer that couples the samples of a batch (batch
normalisation in training: ``samplewise = False``) cannot be split: such models take
whole-batch steps. ``Sequential.backward_hooks`` are called once per slice, with dL/d(output)
of that slice's mean loss, possibly from a helper thread.
"""
import contextlib
import copy

import numpy as np

from .backend import (Buffers, cores_busy, parts_on_threads, run_parts, slices_of_batches,
                      thread_budget)
from .conv import ConvLayer
from .layers import Dropout

MIN_PART = 32       # samples per slice at least: smaller products are not worth a thread
THREADS = 2         # slices per batch unless told otherwise (fit's ``threads``)


def parts_for(model, batch_size, threads, training=True):
    """How many slices a step on ``batch_size`` samples is cut into: none for a model
    without convolutions, whose time goes to products that BLAS already spreads over the
    cores (splitting a 784-256-256-10 MLP's batches of 128 made its steps slower), nor, in
    training, for one with a layer that couples the samples. Every layer treats the samples
    independently in evaluation."""
    if threads < 2 or not any(isinstance(layer, ConvLayer) for layer in model.layers) or \
            training and not all(layer.samplewise or _frozen(layer) for layer in model.layers):
        return 1
    return max(1, min(threads, batch_size // MIN_PART))


def _frozen(layer):
    return not getattr(layer, "trainable", True)


def _replica(model):
    """A model whose layers share ``model``'s parameter and state arrays but not their
    activations, buffers or gradients."""
    twin = copy.copy(model)
    twin.layers = []
    for layer in model.layers:
        r = copy.copy(layer)
        r.grads = {k: np.zeros_like(g) for k, g in layer.grads.items()}
        for name, value in vars(layer).items():
            if isinstance(value, Buffers):
                setattr(r, name, Buffers())
        twin.layers.append(r)
    return twin


class _Slices:
    """Batches of ``model`` cut into up to ``threads`` slices, each on a replica of the
    layers (see the module docstring). The replicas share the arrays the model has when
    this is made. Use it as a context around a loop of steps: while batches are cut, BLAS
    keeps to one thread throughout (switching its threads at every step costs more than a
    small step: OpenBLAS's workers spin after they are woken, competing with the slices)."""

    training = True

    def __init__(self, model, threads, batch_size):
        self.model, self.threads = model, threads
        self.replicas = [model]
        self.splits = parts_for(model, batch_size, threads, self.training) > 1
        self.at_once = thread_budget() if self.splits else 1

    def __enter__(self):
        self._context = slices_of_batches(self.at_once) if self.splits else \
            contextlib.nullcontext()
        self._context.__enter__()
        return self

    def __exit__(self, *exc):
        return self._context.__exit__(*exc)

    def _slices(self, n):
        """The slices of a batch of n samples, with a replica ready for each."""
        parts = parts_for(self.model, n, self.threads, self.training)
        while len(self.replicas) < parts:
            self.replicas.append(_replica(self.model))
        bounds = np.linspace(0, n, parts + 1).astype(int)
        return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]

    def _run(self, x, step):
        """[step(replica, slice of x) for each slice], and the slices."""
        slices = self._slices(len(x))
        calls = [lambda r=r, s=s: step(r, s) for r, s in zip(self.replicas, slices)]
        with parts_on_threads():
            return run_parts(calls, 1 if cores_busy() else self.at_once), slices


class SplitSteps(_Slices):
    """Training steps on batches of ``batch_size``; made once per fit."""

    def loss_and_grads(self, x, labels):
        """(loss, outputs) of one training step on (x, labels); the gradients are left in
        the model's layers, as by ``model.loss_and_grads(x, labels, input_grad=False)``."""
        n = len(x)
        if parts_for(self.model, n, self.threads) == 1:
            return self.model.loss_and_grads(x, labels, input_grad=False)[:2]
        self._plan_dropout(n, self._slices(n))
        results, slices = self._run(
            x, lambda r, s: r.loss_and_grads(x[s], labels[s], input_grad=False))
        weights = [(s.stop - s.start) / n for s in slices]
        for i, layer in enumerate(self.model.layers):
            for k, g in layer.grads.items():
                g *= weights[0]
                for r, w in zip(self.replicas[1:len(slices)], weights[1:]):
                    theirs = r.layers[i].grads[k]       # refilled by the next step: scaled
                    theirs *= w                         # in place, no temporary
                    g += theirs
        loss = sum(w * loss for w, (loss, _, _) in zip(weights, results))
        return loss, np.concatenate([out for _, out, _ in results])

    def _plan_dropout(self, n, slices):
        for i, layer in enumerate(self.model.layers):
            if isinstance(layer, Dropout) and layer.rate:
                scale = layer.draw((n,) + layer.input_shape, self.model.dtype)
                for r, s in zip(self.replicas, slices):
                    r.layers[i].planned = scale[s]


class SplitForwards(_Slices):
    """Evaluation forwards (``model.forward(x, False, upto)``) on batches of ``batch_size``."""

    training = False

    def __call__(self, x, upto=None):
        if parts_for(self.model, len(x), self.threads, False) == 1:
            return self.model.forward(x, False, upto)
        outs, _ = self._run(x, lambda r, s: r.forward(x[s], False, upto))
        return np.concatenate(outs)
