"""On-the-fly data augmentation, vectorised over the batch in NumPy.

Every transform is a callable ``(images, rng) -> images`` on a float32 NHWC batch; it draws its
random numbers from ``rng`` only, so a seeded generator gives the same pictures every run.
Geometric transforms resample with bilinear interpolation; samples that fall outside the picture
take the value of the nearest edge pixel (the background for centred characters, whatever the
input scaling).

    >>> aug = Compose([Elastic(alpha=34, sigma=4), Rotate(10), Shift(2), GaussianNoise(0.1)])
    >>> batch = aug(batch, np.random.default_rng(0))

In a TOML config (0 switches a transform off):

    [augment]
    elastic = {alpha = 34.0, sigma = 4.0}
    rotate = 10.0             # degrees, uniform in [-10, 10]
    shift = 2                 # pixels, integer, uniform in [-2, 2] for each axis
    noise = 0.1               # std of Gaussian noise added to each pixel
    abs_uniform_noise = 1.0   # x -> |x + U(-a, a)|
    copies = [{rotate = 10}, {rotate = -10}]   # fixed copies added to the training set

``copies`` are not drawn at random: each entry adds one transformed copy of every training
image (rotate: exactly that many degrees; shift = [dy, dx] pixels) before training starts.
"""
import math

import numpy as np

# ---------------------------------------------------------------------------- resampling


def bilinear(images, ys, xs):
    """Sample ``images`` (N, H, W, C) at the points (ys, xs), each (N, P, Q), by bilinear
    interpolation, giving (N, P, Q, C); coordinates are clamped to the picture, so outside
    points repeat the edge."""
    n, h, w, c = images.shape
    p, q = ys.shape[1:]
    # Written with out= throughout: fresh arrays of this size cost page faults.
    ys = np.clip(ys, 0, h - 1, dtype=np.float32)
    xs = np.clip(xs, 0, w - 1, dtype=np.float32)
    # Top-left corner of the cell; at the last row/column use the cell before with weight 1.
    y0 = np.floor(ys)
    np.minimum(y0, max(h - 2, 0), out=y0)
    x0 = np.floor(xs)
    np.minimum(x0, max(w - 2, 0), out=x0)
    ys -= y0  # now the weights of the lower and right neighbours
    xs -= x0
    y0 *= w
    y0 += x0
    base = y0.astype(np.intp).reshape(n, p * q)
    base += np.arange(0, n * h * w, h * w, dtype=np.intp)[:, None]
    base = base.reshape(-1)
    dy, dx = (w if h > 1 else 0), (1 if w > 1 else 0)
    if c == 1:
        flat, wy, wx = images.reshape(-1), ys.reshape(-1), xs.reshape(-1)
    else:
        flat, wy, wx = images.reshape(-1, c), ys.reshape(-1, 1), xs.reshape(-1, 1)

    def row(offset, out):
        # flat[offset:][base] is flat[base + offset], without an index array per neighbour.
        np.take(flat[offset:], base, axis=0, out=out)
        if not dx:
            return out
        right = np.take(flat[offset + dx:], base, axis=0)
        right -= out
        right *= wx
        out += right
        return out

    shape = (n * p * q,) if c == 1 else (n * p * q, c)
    top = row(0, np.empty(shape, images.dtype))
    bottom = row(dy, np.empty(shape, images.dtype))
    bottom -= top
    bottom *= wy
    bottom += top
    return bottom.reshape(n, p, q, c)


def _grid(h, w):
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32),
                         indexing="ij")
    return ys, xs


def gaussian_matrix(size, sigma):
    """(size, size) matrix S with (S @ v) = v smoothed by a Gaussian of std ``sigma`` pixels,
    truncated at 3 sigma and renormalised at the borders (each row sums to 1)."""
    i = np.arange(size, dtype=np.float64)
    d = i[:, None] - i[None, :]
    k = np.exp(-0.5 * (d / sigma) ** 2) * (np.abs(d) <= 3 * sigma + 0.5)
    return (k / k.sum(axis=1, keepdims=True)).astype(np.float32)


# ---------------------------------------------------------------------------- transforms


def _check_number(name, value, low=0.0):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= low \
            or isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number >= {low:g}, got {value!r}")
    return float(value)


class Elastic:
    """Elastic distortion (Simard, Steinkraus and Platt, 2003): each pixel moves by a random
    displacement, uniform in [-1, 1] per axis, smoothed by a Gaussian of std ``sigma`` pixels and
    scaled by ``alpha`` pixels; the picture is resampled at the displaced points. Small sigma
    gives jitter, large sigma a gentle warp; alpha=34, sigma=4 suits 28x28 digits."""

    def __init__(self, alpha=34.0, sigma=4.0):
        self.alpha = _check_number("elastic alpha", alpha)
        self.sigma = _check_number("elastic sigma", sigma)
        if self.alpha > 0 and self.sigma <= 0:
            raise ValueError("elastic sigma must be > 0 when alpha > 0")
        self._smooth = {}

    def field(self, n, h, w, rng):
        """Displacements (dy, dx), each (n, h, w) float32, in pixels."""
        if (h, w) not in self._smooth:
            self._smooth[(h, w)] = (gaussian_matrix(h, self.sigma),
                                    gaussian_matrix(w, self.sigma).T.copy())
        sh, swt = self._smooth[(h, w)]
        # Uniform noise in 256 levels (random bytes are cheap). Smoothing averages about
        # 4 pi sigma^2 pixels, so the rounding moves a point by ~0.007 px (alpha 34, sigma 4).
        u = np.frombuffer(rng.bytes(2 * n * h * w), np.uint8).astype(np.float32)
        # Smooth along the columns, then the rows, each as one matrix product.
        u = (sh @ u.reshape(2 * n, h, w).transpose(1, 0, 2).reshape(h, 2 * n * w))
        u = u.reshape(h, 2 * n, w).transpose(1, 0, 2).reshape(2 * n * h, w) @ swt
        # bytes b in 0..255 -> alpha * (2 b / 255 - 1), uniform in [-alpha, alpha]; the
        # smoothing rows sum to one, so the map commutes with it.
        u *= np.float32(2 * self.alpha / 255)
        u -= np.float32(self.alpha)
        u = u.reshape(2 * n, h, w)
        return u[:n], u[n:]

    def __call__(self, images, rng):
        if self.alpha == 0:
            return images
        n, h, w, _ = images.shape
        dy, dx = self.field(n, h, w, rng)
        ys, xs = _grid(h, w)
        dy += ys
        dx += xs
        return bilinear(images, dy, dx)

    def __repr__(self):
        return f"Elastic(alpha={self.alpha:g}, sigma={self.sigma:g})"


def elastic_field(shape, alpha=34.0, sigma=4.0, rng=None):
    """The displacement field of one elastic distortion of an (h, w) picture, for explanation:
    returns (ys, xs, dy, dx), where (ys + dy, xs + dx) is the point each output pixel is read
    from. Plot it with e.g. matplotlib's quiver(xs, ys, dx, -dy)."""
    h, w = shape
    rng = np.random.default_rng(rng)
    dy, dx = Elastic(alpha, sigma).field(1, h, w, rng)
    ys, xs = _grid(h, w)
    return ys, xs, dy[0], dx[0]


def elastic_grid_picture(shape=(28, 28), alpha=34.0, sigma=4.0, rng=None, scale=8, spacing=2):
    """A picture of one elastic distortion for explanation: grid lines every ``spacing`` pixels
    of an (h, w) picture, drawn ``scale`` times larger and moved by the displacement field (the
    same field ``elastic_field`` returns for this ``rng``). Returns float32 (h*scale, w*scale)
    with lines at 1 on a 0 background."""
    ys, xs, dy, dx = elastic_field(shape, alpha, sigma, rng)
    h, w = shape
    big_h, big_w = h * scale, w * scale
    # The field at every point of the large picture, by bilinear interpolation of (dy, dx).
    field = np.stack([dy, dx], axis=-1)[None]
    py, px = _grid(big_h, big_w)
    py, px = (py + 0.5) / scale - 0.5, (px + 0.5) / scale - 0.5
    big = bilinear(field, py[None], px[None])[0] * scale
    lines = np.zeros((1, big_h, big_w, 1), np.float32)
    step = spacing * scale
    lines[0, step // 2::step, :, 0] = 1
    lines[0, :, step // 2::step, 0] = 1
    gy, gx = _grid(big_h, big_w)
    return bilinear(lines, (gy + big[..., 0])[None], (gx + big[..., 1])[None])[0, :, :, 0]


class Rotate:
    """Rotation about the picture centre by an angle uniform in [-degrees, degrees] (positive:
    anticlockwise)."""

    def __init__(self, degrees=10.0):
        self.degrees = _check_number("rotate degrees", degrees)

    def __call__(self, images, rng):
        if self.degrees == 0:
            return images
        n, h, w, _ = images.shape
        theta = np.deg2rad(rng.uniform(-self.degrees, self.degrees, n)).astype(np.float32)
        cos, sin = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
        ys, xs = _grid(h, w)
        cy, cx = (h - 1) / 2, (w - 1) / 2
        y, x = ys - cy, xs - cx
        # Inverse map: each output pixel reads the input point rotated back by theta
        # (positive theta turns the picture anticlockwise as displayed, y pointing down).
        return bilinear(images, cy + cos * y + sin * x, cx - sin * y + cos * x)

    def __repr__(self):
        return f"Rotate({self.degrees:g})"


class Shift:
    """Translation by whole pixels, uniform in [-pixels, pixels] on each axis."""

    def __init__(self, pixels=2):
        if isinstance(pixels, bool) or not isinstance(pixels, int) or pixels < 0:
            raise ValueError(f"shift pixels must be an integer >= 0, got {pixels!r}")
        self.pixels = pixels

    def __call__(self, images, rng):
        if self.pixels == 0:
            return images
        n, h, w, _ = images.shape
        sy, sx = rng.integers(-self.pixels, self.pixels + 1, (2, n, 1, 1))
        ys, xs = _grid(h, w)
        return bilinear(images, ys - sy.astype(np.float32), xs - sx.astype(np.float32))

    def __repr__(self):
        return f"Shift({self.pixels})"


class GaussianNoise:
    """x + N(0, std^2) on every pixel (not clipped)."""

    def __init__(self, std=0.1):
        self.std = _check_number("noise std", std)

    def __call__(self, images, rng):
        if self.std == 0:
            return images
        noise = rng.standard_normal(images.shape, dtype=np.float32)
        return images + np.float32(self.std) * noise

    def __repr__(self):
        return f"GaussianNoise({self.std:g})"


class AbsUniformNoise:
    """|x + U(-a, a)| on every pixel: uniform noise folded back to non-negative values."""

    def __init__(self, amplitude=1.0):
        self.amplitude = _check_number("abs_uniform_noise amplitude", amplitude)

    def __call__(self, images, rng):
        if self.amplitude == 0:
            return images
        a = np.float32(self.amplitude)
        return np.abs(images + (rng.random(images.shape, dtype=np.float32) * 2 * a - a))

    def __repr__(self):
        return f"AbsUniformNoise({self.amplitude:g})"


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, images, rng):
        images = np.asarray(images, np.float32)
        if images.ndim != 4:
            raise ValueError(f"augmentation expects NHWC images, got shape {images.shape}")
        for t in self.transforms:
            images = t(images, rng)
        return images

    def __repr__(self):
        return f"Compose([{', '.join(map(repr, self.transforms))}])"


# ---------------------------------------------------------------------------- config

DEFAULTS = {"elastic": {"alpha": 0.0, "sigma": 0.0}, "rotate": 0.0, "shift": 0, "noise": 0.0,
            "abs_uniform_noise": 0.0, "copies": []}
COPY_KEYS = ("rotate", "shift")
ELASTIC_DEFAULTS = {"alpha": 34.0, "sigma": 4.0}


def _number(key, value, problems, integer=False):
    ok = not isinstance(value, bool) and isinstance(value, int if integer else (int, float))
    if not ok or isinstance(value, float) and not math.isfinite(value) or value < 0 \
            or integer and value >= 2**31:
        kind = "an integer" if integer else "a finite number"
        problems.append(f"augment.{key}: expected {kind} >= 0 (0 = off), got {value!r}")
        return None
    return value if integer else float(value)


def check_config(section, problems):
    """Validate the [augment] section, appending 'key: message' strings to ``problems``;
    returns it with every option spelled out (0 = off)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULTS.items()}
    for key, value in section.items():
        if key not in DEFAULTS:
            problems.append(f"augment.{key}: unknown augmentation (expected one of "
                            f"{', '.join(DEFAULTS)})")
        elif key == "elastic":
            if not isinstance(value, dict):
                problems.append(f"augment.elastic: expected a table such as "
                                f"{{alpha = 34.0, sigma = 4.0}}, got {value!r}")
                continue
            el = dict(ELASTIC_DEFAULTS)
            for name, v in value.items():
                if name not in el:
                    problems.append(f"augment.elastic.{name}: unknown option (expected alpha, "
                                    f"sigma)")
                    continue
                el[name] = _number(f"elastic.{name}", v, problems)
            if el["alpha"] is not None and el["sigma"] is not None:
                if el["alpha"] > 0 and el["sigma"] <= 0:
                    problems.append("augment.elastic.sigma: must be > 0 when alpha > 0")
                out["elastic"] = el
        elif key == "copies":
            out["copies"] = _check_copies(value, problems)
        else:
            v = _number(key, value, problems, integer=(key == "shift"))
            if v is not None:
                out[key] = v
    return out


def _check_copies(value, problems):
    example = "[{rotate = 10}, {rotate = -10}, {shift = [0, 2]}]"
    if not isinstance(value, list) or not all(isinstance(c, dict) and c for c in value):
        problems.append(f"augment.copies: expected a list of transform tables such as "
                        f"{example}, got {value!r}")
        return []
    out = []
    for n, copy in enumerate(value):
        key = f"augment.copies[{n}]"
        for name, v in copy.items():
            if name not in COPY_KEYS:
                problems.append(f"{key}.{name}: unknown transform (expected "
                                f"{', '.join(COPY_KEYS)})")
            elif name == "rotate" and (isinstance(v, bool) or not isinstance(v, (int, float))
                                       or isinstance(v, float) and not math.isfinite(v)):
                problems.append(f"{key}.rotate: expected an angle in degrees, got {v!r}")
            elif name == "shift" and not (isinstance(v, list) and len(v) == 2 and all(
                    isinstance(p, int) and not isinstance(p, bool) for p in v)):
                problems.append(f"{key}.shift: expected [dy, dx] in whole pixels, got {v!r}")
        out.append(dict(copy))
    return out


def transformed(images, rotate=0.0, shift=(0, 0)):
    """``images`` (NHWC) rotated by exactly ``rotate`` degrees (anticlockwise) about the
    centre, then moved by ``shift`` = (dy, dx) pixels (down, right)."""
    images = np.asarray(images, np.float32)
    n, h, w, _ = images.shape
    theta = np.float32(np.deg2rad(rotate))
    ys, xs = _grid(h, w)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    y, x = ys - cy - shift[0], xs - cx - shift[1]
    cos, sin = np.cos(theta), np.sin(theta)
    grid = np.broadcast_to((cy + cos * y + sin * x)[None], (n, h, w))
    return bilinear(images, grid.copy(), np.broadcast_to((cx - sin * y + cos * x)[None],
                                                        (n, h, w)).copy())


def with_copies(images, labels, copies):
    """The training set with one transformed copy of every image per entry of ``copies``
    (tables as in ``[augment] copies``) appended after the originals."""
    if not copies:
        return images, labels
    if np.asarray(images).ndim != 4:
        raise ValueError(f"augment.copies needs images (N, H, W, C), got shape "
                         f"{np.shape(images)}")
    parts = [np.asarray(images, np.float32)]
    for c in copies:
        parts.append(transformed(images, c.get("rotate", 0.0), tuple(c.get("shift", (0, 0)))))
    return np.concatenate(parts), np.concatenate([labels] * (len(copies) + 1))


def from_config(section):
    """A function (images, rng) -> images for a resolved [augment] section, or None when every
    augmentation is off."""
    s = {**DEFAULTS, **section}
    transforms = []
    if s["elastic"].get("alpha", 0):
        transforms.append(Elastic(s["elastic"]["alpha"], s["elastic"]["sigma"]))
    if s["rotate"]:
        transforms.append(Rotate(s["rotate"]))
    if s["shift"]:
        transforms.append(Shift(s["shift"]))
    if s["noise"]:
        transforms.append(GaussianNoise(s["noise"]))
    if s["abs_uniform_noise"]:
        transforms.append(AbsUniformNoise(s["abs_uniform_noise"]))
    return Compose(transforms) if transforms else None
