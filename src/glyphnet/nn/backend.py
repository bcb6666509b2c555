"""The array backend: every CPU-specific trick of the layers and optimisers, behind small
functions.

The layers write their maths with NumPy (``xp``) and call this module for everything that is
about making it fast on a CPU: how many BLAS threads a product gets, splitting element-wise work
over two threads (NumPy releases the GIL inside its loops, so two threads use two cores),
flushing subnormal floats, stride-trick windows, the strided scatter-adds of col2im and buffers
reused from call to call. Another array library (CuPy, say) would mean one module with these
functions for its arrays and the few call sites that pick it.
"""
import contextlib
import os
import time
from concurrent.futures import ThreadPoolExecutor, wait

import numpy
from numpy.lib.stride_tricks import as_strided
from threadpoolctl import ThreadpoolController

xp = numpy                  # the array module the layers compute with

SPLIT_SIZE = 32768          # arrays with at least twice this many entries are split
CORES = os.cpu_count() or 1
_pool = None
_blas = None                 # the BLAS libraries' thread controls
_whole_parts = [0]           # > 0 while parts of a batch run on threads: no splits inside
_budgets = []                # thread budgets of the slices_of_batches contexts entered


# ------------------------------------------------------------------------------ threads
_load = [-1.0, False]       # [time read, whether the cores were busy then]


def cores_busy():
    """Whether other processes keep the cores busy: the 1-minute load average (this process
    included) above the number of cores plus half a core, read at most once a second.

    A computation split over two threads waits for the slower one; when other processes
    share the cores, that is often one the scheduler has set aside for a whole time slice
    (milliseconds), so a split costs more than it saves and one thread is faster.
    """
    now = time.monotonic()
    if now - _load[0] > 1.0:
        try:
            _load[:] = now, os.getloadavg()[0] > CORES + 0.5
        except (AttributeError, OSError):       # no load average (Windows): assume idle
            _load[:] = now, False
    return _load[1]


def blas_threads_for(batch_size):
    """A context for products on batches of ``batch_size``: one BLAS thread for small batches,
    whose matrix-vector products one thread runs faster than two that wait for each other.
    It depends on the batch size alone, never on the machine's load: OpenBLAS sums in another
    order on one thread than on two, so a load-dependent choice would make the same config and
    seed give different weights from run to run."""
    if not (batch_size and batch_size < 16):
        return contextlib.nullcontext()
    return _blas_controls().limit(limits=1)


def _blas_controls():
    global _blas
    if _blas is None:       # found once: a fresh threadpool_limits looks for them (~1 ms)
        _blas = ThreadpoolController().select(user_api="blas")
    return _blas


def blas_limit(threads):
    """Keep BLAS to ``threads`` threads until the returned limiter's
    ``restore_original_limits()`` (or, used as a context, its end)."""
    return _blas_controls().limit(limits=threads)


def thread_budget():
    """How many cores glyphnet's own threads may use: the BLAS thread count in effect
    (OPENBLAS_NUM_THREADS, threadpoolctl's limits; an experiment running two jobs on two
    cores gives each one) or, inside ``slices_of_batches``, the count it was given; at most
    the cores, and one while other processes keep them busy."""
    if cores_busy():
        return 1
    return _budgets[-1] if _budgets else max(1, min(_blas_threads(), CORES))


@contextlib.contextmanager
def slices_of_batches(budget):
    """BLAS on one thread for a loop whose batches are cut into slices run on ``budget``
    threads of glyphnet's own (nn/parallel.py); thread_budget() gives ``budget`` inside."""
    _budgets.append(budget)
    try:
        with blas_limit(1):
            yield
    finally:
        _budgets.pop()


def _split_worth_it(size):
    """Element-wise work on ``size`` entries goes to two threads: large, two cores, idle, not
    already inside a part of a batch running on its own thread, and BLAS kept to one thread.
    (After a product OpenBLAS's idle threads spin for a while on the other cores, waiting for
    the next one; a helper thread there competes with them and the split gains nothing:
    benchmarks/bench_layers.py --only mlp.)"""
    return size >= 2 * SPLIT_SIZE and CORES >= 2 and not _whole_parts[0] and \
        _blas_threads() == 1 and not cores_busy()


def _blas_threads():
    return max((c.num_threads for c in _blas_controls().lib_controllers), default=1)


def blas_kernel_note():
    """A warning line when the environment pins OpenBLAS to one CPU's kernels (None if not):
    OPENBLAS_CORETYPE=Haswell on this AVX-512 machine halves the speed of float32 products
    (its SkylakeX kernels ran them 2-3x faster). Read when NumPy loads OpenBLAS, so it must be
    unset before Python starts."""
    forced = os.environ.get("OPENBLAS_CORETYPE")
    if not forced:
        return None
    return (f"OPENBLAS_CORETYPE={forced} pins OpenBLAS to its {forced} kernels, which may be "
            f"older than this CPU's (float32 products ran 2-3x slower with Haswell than with "
            f"SkylakeX kernels on the AVX-512 machine); unset it for full speed")


def _helper(workers=1):
    global _pool
    if _pool is None or _pool._max_workers < workers:
        if _pool is not None:
            _pool.shutdown(wait=False)
        _pool = ThreadPoolExecutor(workers, thread_name_prefix="glyphnet-backend")
    return _pool


def _forget_pool():
    """A forked child has no helper thread: start a new pool there when needed."""
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_pool)


def _run_split(mine, theirs):
    """Run the callables ``theirs`` on the helper thread (under the caller's NumPy error
    state, which is thread-local) while this thread runs ``mine``."""
    errors = xp.geterr()

    def their_part():
        with xp.errstate(**errors):
            for call in theirs:
                call()

    job = _helper().submit(their_part) if theirs else None
    try:
        for call in mine:
            call()
    finally:
        if job is not None:
            job.result()


@contextlib.contextmanager
def parts_on_threads():
    """A context for running parts of a batch on threads of their own (nn/parallel.py): one
    BLAS thread per product and no element-wise splits inside a part, so each part computes
    exactly what it would alone, whichever thread runs it and however many run at once."""
    _whole_parts[0] += 1
    try:
        with blas_limit(1):
            yield
    finally:
        _whole_parts[0] -= 1


def run_parts(calls, at_once):
    """[call() for call in calls], up to ``at_once`` of them at a time: the first on this
    thread, the others on helper threads (under this thread's NumPy error state)."""
    if at_once < 2 or len(calls) < 2:
        return [call() for call in calls]
    errors = xp.geterr()

    def under_errors(call):
        with xp.errstate(**errors):
            return call()
    jobs = [_helper(at_once - 1).submit(under_errors, call) for call in calls[1:]]
    try:
        first = calls[0]()
    finally:
        wait(jobs)
    return [first] + [job.result() for job in jobs]


def in_two_threads(update, groups, *args):
    """Call update(*group, *args) for each group of same-shaped arrays, the large ones split
    into two flat halves with one half done on a helper thread. Element-wise updates give
    bit-identical results however the arrays are split."""
    mine, theirs = [], []
    for group in groups:
        half = group[0].size // 2
        if not _split_worth_it(group[0].size) or not all(a.flags.c_contiguous for a in group):
            mine.append(lambda group=group: update(*group, *args))
            continue
        flat = [a.reshape(-1) for a in group]   # views of contiguous arrays
        theirs.append(lambda flat=flat, half=half: update(*(a[:half] for a in flat), *args))
        mine.append(lambda flat=flat, half=half: update(*(a[half:] for a in flat), *args))
    _run_split(mine, theirs)


def on_halves(fn, *arrays, axis=0):
    """fn(*parts) on the two halves of ``arrays`` along ``axis`` (the batch axis; one per
    array when a tuple), one half on the helper thread; a single call for small arrays.
    ``fn`` must treat the samples independently and write only into the arrays it is given;
    then the result is exactly that of fn(*arrays)."""
    axes = axis if isinstance(axis, tuple) else (axis,) * len(arrays)
    n = arrays[0].shape[axes[0]]
    if n < 2 or not _split_worth_it(arrays[0].size):
        fn(*arrays)
        return
    h = n // 2

    def part(half):
        return [a[(slice(None),) * ax + (half,)] for a, ax in zip(arrays, axes)]
    first, second = part(slice(None, h)), part(slice(h, None))
    _run_split([lambda: fn(*second)], [lambda: fn(*first)])


_zeros = {}                 # dtype -> a read-only array of zeros, grown as needed


def zeros_like(a):
    """A read-only array of zeros shaped like ``a``: a view of one shared buffer. NumPy's
    maximum against a scalar runs unvectorised, against an array it does not (5x faster on
    128x256 float32: benchmarks/bench_layers.py --only rectifiers)."""
    buf = _zeros.get(a.dtype)
    if buf is None or buf.size < a.size:
        buf = xp.zeros(max(a.size, 1 << 16), a.dtype)
        buf.flags.writeable = False
        _zeros[a.dtype] = buf
    return buf[:a.size].reshape(a.shape)


def flush_subnormal(a, scratch):
    """Zero entries with |a| < 1e-30. Values that decay into subnormal floats (Adam's moments
    of rarely active weights) make every later float32 operation on them many times slower."""
    xp.abs(a, out=scratch)
    a[scratch < 1e-30] = 0


# ------------------------------------------------------------------------------ packing
def packed_like(arrays):
    """Zero arrays shaped like ``arrays``, laid end to end in one buffer (views of it) when
    they share a dtype, so an element-wise update of them all can be one call on the buffer
    (flat_groups)."""
    if len({a.dtype for a in arrays}) != 1:
        return [xp.zeros_like(a) for a in arrays]
    buffer = xp.zeros(sum(a.size for a in arrays), arrays[0].dtype)
    views, start = [], 0
    for a in arrays:
        views.append(buffer[start:start + a.size].reshape(a.shape))
        start += a.size
    return views


def pack(arrays):
    """Copies of ``arrays`` laid end to end in one buffer (see packed_like)."""
    views = packed_like(arrays)
    for view, a in zip(views, arrays):
        view[...] = a
    return views


def flat_groups(*lists):
    """The arrays of equally long ``lists`` (position k of every list belonging together)
    as groups for element-wise updates: a run of positions whose arrays follow each other in
    one buffer, in every list, becomes one group of flat views spanning the run (one call
    per operation instead of one per array: the biases are small and NumPy's call costs
    about a microsecond); any other position is a group of its own arrays."""
    groups, start, n = [], 0, len(lists[0])
    for k in range(1, n + 1):
        if k < n and all(_follows(a[k - 1], a[k]) for a in lists):
            continue
        groups.append(tuple(_span(a[start:k]) for a in lists))
        start = k
    return groups


def _follows(a, b):
    """Whether ``b`` starts where ``a`` ends, both C-contiguous views of one C-contiguous
    buffer of their dtype."""
    base = a.base
    return base is not None and base is b.base and base.flags.c_contiguous and \
        a.dtype == b.dtype == base.dtype and a.flags.c_contiguous and b.flags.c_contiguous \
        and a.ctypes.data + a.nbytes == b.ctypes.data


def _span(arrays):
    """One flat view of arrays that follow each other in one buffer (the array if alone)."""
    if len(arrays) == 1:
        return arrays[0]
    base = arrays[0].base.reshape(-1)
    start = (arrays[0].ctypes.data - base.ctypes.data) // base.itemsize
    return base[start:start + sum(a.size for a in arrays)]


# ------------------------------------------------------------------------------ windows
def windows(padded, kh, kw, stride):
    """Every KHxKW receptive field of the padded images (N, Hp, Wp, C), as a read-only view
    of shape (N, OH, OW, KH, KW, C); no data is copied."""
    n, hp, wp, c = padded.shape
    oh, ow = (hp - kh) // stride + 1, (wp - kw) // stride + 1
    sn, sh, sw, sc = padded.strides
    return as_strided(padded, (n, oh, ow, kh, kw, c), (sn, sh * stride, sw * stride, sh, sw, sc),
                      writeable=False)


def windows_by_pool(padded, kh, kw, stride):
    """The receptive fields of ``windows`` arranged by the 2x2 windows of a stride-2 pooling
    of the outputs: a read-only view (N, 2, 2, OH//2, OW//2, KH, KW, C) whose [n, di, dj, p, q]
    is the field of output (2p + di, 2q + dj). An odd last output row/column, which no pooling
    window reads, is left out."""
    n, hp, wp, c = padded.shape
    oh, ow = (hp - kh) // stride + 1, (wp - kw) // stride + 1
    sn, sh, sw, sc = padded.strides
    return as_strided(padded, (n, 2, 2, oh // 2, ow // 2, kh, kw, c),
                      (sn, sh * stride, sw * stride, 2 * sh * stride, 2 * sw * stride, sh, sw,
                       sc), writeable=False)


def offset(i, j, oh, ow, stride):
    """Index of the input positions that kernel offset (i, j) touches, for all outputs."""
    return (slice(None), slice(i, i + stride * (oh - 1) + 1, stride),
            slice(j, j + stride * (ow - 1) + 1, stride))


def copyto(dst, src, axis=0):
    """dst[...] = src, the samples (along ``axis``) split over two threads."""
    on_halves(xp.copyto, dst, src, axis=axis)


def col2im(dcols, dxp, stride):
    """dxp[n, p*s + i, q*s + j, c] += dcols[n, p, q, i, j, c] for all p, q, i, j: each
    receptive field's gradient added back where it was read; the batch over two threads.

    One add per kernel row i and output column q (or per output position when there are fewer
    rows of outputs than of the kernel) moves a whole kernel row, KW*C contiguous values in
    both arrays, at a time; one add per kernel offset (i, j) would move only C at a time.
    """
    _, oh, ow, kh, kw, _ = dcols.shape
    last = stride * (oh - 1) + 1

    def add(dcols, dxp):
        if kh <= oh:
            for i in range(kh):
                for q in range(ow):
                    dxp[:, i:i + last:stride, q * stride:q * stride + kw] += dcols[:, :, q, i]
        else:
            for p in range(oh):
                for q in range(ow):
                    dxp[:, p * stride:p * stride + kh, q * stride:q * stride + kw] += \
                        dcols[:, p, q]
    on_halves(add, dcols, dxp)


def col2im_transposed(dcols_t, dxp, stride):
    """col2im for dL/dcols stored transposed, (KH, KW, C, N, OH, OW): each (offset, channel)
    row is contiguous. dxp[n, p*s + i, q*s + j, c] += dcols_t[i, j, c, n, p, q]."""
    kh, kw, c, _, oh, ow = dcols_t.shape

    def add(dcols_t, dxp):
        for i in range(kh):
            for j in range(kw):
                for ch in range(c):
                    dxp[offset(i, j, oh, ow, stride) + (ch,)] += dcols_t[i, j, ch]
    on_halves(add, dcols_t, dxp, axis=(3, 0))


# ------------------------------------------------------------------------------ buffers
class Buffers:
    """Arrays reused from call to call: large fresh allocations cost page faults every time."""

    def __init__(self):
        self.arrays = {}

    def get(self, name, shape, dtype, zeros=False):
        """An array of ``shape``: uninitialised (the front of a big enough earlier one), or
        with ``zeros`` one that was zero when made, only ever reused at the same shape."""
        a = self.arrays.get(name)
        size = int(numpy.prod(shape))
        if zeros:
            if a is None or a.shape != shape or a.dtype != dtype:
                a = self.arrays[name] = xp.zeros(shape, dtype)
            return a
        if a is None or a.size < size or a.dtype != dtype:
            a = self.arrays[name] = xp.empty(size, dtype)
        return a[:size].reshape(shape)
