"""``glyphnet serve``: a drawing pad in the browser and a JSON API for trained models.

The page sends the canvas as a PNG data URL; the server prepares it exactly as ``glyphnet
predict`` prepares an image file (the way the model's training images were, images.prepare_as,
then the model's scaler) and answers with the top classes, the image the network received and a
saliency map. Flask is imported only when an app is created, so the rest of the command line
does not pay for it.
"""
import base64
import binascii
import io
import json
import os
import re
import sys
import threading
import time
import uuid

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ConfigError, GlyphnetError
from ..fileio import atomic_open
from ..data.images import preparation_of, prepare_as

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
MAX_BODY_BYTES = 4 * 1024 * 1024   # whole request body
MAX_IMAGE_SIDE = 2048              # pixels per side of an uploaded image, checked before decoding
MAX_ARRAY_SIDE = 1024              # rows or columns of a JSON "pixels" array
IMAGE_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG"}
DEFAULT_TOP = 5
# A class whose name, lower-cased without spaces, '_' and '-', is one of these means "not a
# character": predicting it makes the answer "not a character / not sure".
REJECT_NAMES = {"none", "reject", "unknown", "notacharacter", "noncharacter", "nonchar"}
LABEL_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}\Z")
LABEL_RULE = ("1 to 32 characters: ASCII letters, digits, '_' or '-', starting with a letter "
              "or digit")
RESERVED_LABELS = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
                   *(f"lpt{i}" for i in range(10))}   # device names on Windows file systems
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class RequestError(Exception):
    """A request the server refuses; answered as JSON {"error": message} with ``status``."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.message, self.status = message, status


def is_reject_class(name):
    return re.sub(r"[\s_-]+", "", str(name).lower()) in REJECT_NAMES


def percent(p):
    """``p`` as a percentage with at most one decimal ("97.7%", "100%"); below 1 it is never
    rounded up to 100%, above 0 never down to 0% (the page formats with the same rule)."""
    v = round(100 * p, 1)
    v = min(v, 99.9) if p < 1 else v
    v = max(v, 0.1) if p > 0 else v
    return f"{v:g}%"


def run_reject_class(path):
    """data.reject_class of the run config next to a RUN_DIR/model.npz ("" if none)."""
    config = os.path.join(os.path.dirname(os.path.abspath(path)), "config.toml")
    if not os.path.exists(config):
        return ""
    from ..config import read_toml
    value = read_toml(config).get("data", {}).get("reject_class", "")
    return value if isinstance(value, str) else ""


class ServedModel:
    """A model behind a lock: layers keep forward state on themselves for backward, so one
    request at a time may run a model (decoding and preprocessing run in parallel)."""

    def __init__(self, name, model, path=None, reject_class=""):
        shape = tuple(model.input_shape or ())
        if (len(shape) == 3 and shape[2] == 1) or len(shape) == 2:
            height, width = shape[:2]
        else:
            raise GlyphnetError(f"model {name!r}: the drawing pad needs a model of greyscale "
                                f"images, shaped (H, W, 1); this one expects {shape}")
        if height != width:
            raise GlyphnetError(f"model {name!r}: the drawing pad needs square inputs; this one "
                                f"expects {height}x{width}")
        self.name, self.model, self.path, self.size = name, model, path, height
        self.classes = model.class_names
        self.preparation = preparation_of(model)
        self.reject = [c for c in self.classes if is_reject_class(c) or c == reject_class]
        self.lock = threading.Lock()
        self.cache = {}   # the test-set map and robustness curves, computed on first use

    def describe(self):
        from .inspect_api import layer_info
        return {"name": self.name, "path": self.path, "size": self.size,
                "classes": self.classes, "rejection_classes": self.reject,
                "layers": layer_info(self.model)}

    def inputs(self, grey):
        """(the prepared image, the model's scaled input batch of one); the input is None for
        a blank image, which has no ink to crop, scale or classify."""
        seen = prepare_as(grey, self.preparation)
        if float(np.ptp(grey)) < 1e-3:
            return seen, None
        x = seen.reshape((1,) + tuple(self.model.input_shape))
        return seen, x if self.model.scaler is None else self.model.scaler.transform(x)

    def predict(self, grey, threshold, top):
        """Classify a greyscale [0, 1] image of any size and either polarity."""
        from ..inspection.explain import saliency
        seen, x = self.inputs(grey)
        if x is None:
            return {"model": self.name, "classes": [], "prediction": None, "probability": None,
                    "uncertain": True, "reason": "the image is blank", "threshold": threshold,
                    "input": _rounded(seen), "saliency": _rounded(np.zeros_like(seen))}
        with self.lock:
            p = self.model.probabilities(x)[0]
            best = int(np.argmax(p))
            sal = saliency(self.model, x, [best])[0]
        order = np.argsort(p)[::-1][:top]
        label, prob = self.classes[best], float(p[best])
        if label in self.reject:
            reason = f"the model chose its rejection class {label!r}"
        elif prob < threshold:
            reason = (f"the top probability {percent(prob)} is below the threshold "
                      f"{percent(threshold)}")
        else:
            reason = None
        peak = float(sal.max())
        return {"model": self.name,
                "classes": [{"label": self.classes[i], "probability": float(p[i])}
                            for i in order],
                "prediction": label, "probability": prob, "uncertain": reason is not None,
                "reason": reason, "threshold": threshold, "input": _rounded(seen),
                "saliency": _rounded(sal / peak if peak > 0 else sal)}


def _rounded(a):
    """A 2D array as nested lists with 3 decimals: enough to draw it, and a small answer."""
    return np.round(np.asarray(a, np.float64).reshape(a.shape[0], -1), 3).tolist()


# ------------------------------------------------------------------------------ inputs
def decode_data_url(text):
    """The bytes of a 'data:image/png;base64,...' (or image/jpeg) URL."""
    if not isinstance(text, str) or not text.startswith("data:"):
        raise RequestError('"image" must be a data URL such as "data:image/png;base64,..."')
    header, comma, payload = text.partition(",")
    media, _, encoding = header[5:].partition(";")
    if not comma or encoding != "base64":
        raise RequestError('"image" must be a base64 data URL: "data:image/png;base64,..."')
    if media not in IMAGE_TYPES:
        raise RequestError(f'"image" has media type {media!r}; expected one of '
                           f"{', '.join(IMAGE_TYPES)}", 415)
    try:
        return base64.b64decode(payload, validate=True), IMAGE_TYPES[media]
    except (binascii.Error, ValueError) as exc:
        raise RequestError(f'"image" is not valid base64 ({exc})') from None


def decode_image(raw, expected_format):
    """Greyscale [0, 1] pixels of a PNG or JPEG file in memory, transparent parts as white
    paper. The size is read from the header and checked before any pixel is decoded."""
    try:
        with Image.open(io.BytesIO(raw)) as im:
            width, height = im.size
            if im.format != expected_format:
                raise RequestError(f'"image" holds {im.format or "unknown"} data but was sent '
                                   f"as {expected_format}", 415)
            if not (0 < width <= MAX_IMAGE_SIDE and 0 < height <= MAX_IMAGE_SIDE):
                raise RequestError(f'"image" is {width}x{height} pixels; at most '
                                   f"{MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} pixels are accepted", 413)
            im.load()
            if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
                im = im.convert("RGBA")
                im = Image.alpha_composite(Image.new("RGBA", im.size, "white"), im)
            return np.asarray(im.convert("L"), np.float32) / 255.0
    except RequestError:
        raise
    except Image.DecompressionBombError as exc:   # Pillow's own limit, far above ours
        raise RequestError(f'"image" is too large: at most {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} '
                           f"pixels are accepted ({exc})", 413) from None
    except UnidentifiedImageError:
        raise RequestError(f'"image" is not {expected_format} data') from None
    except Exception as exc:   # any failure to decode untrusted bytes is the sender's problem
        raise RequestError(f'"image" could not be decoded as {expected_format} '
                           f"({type(exc).__name__}: {exc})") from None


def parse_pixels(value):
    """A JSON 2D array of numbers in [0, 1] as float32 (H, W)."""
    rule = '"pixels" must be a 2D array (a list of equal-length rows) of numbers in [0, 1]'
    if not isinstance(value, list) or not value or not isinstance(value[0], list):
        raise RequestError(rule)
    if len(value) > MAX_ARRAY_SIDE or len(value[0]) > MAX_ARRAY_SIDE:
        raise RequestError(f'"pixels" is {len(value)}x{len(value[0])}; at most '
                           f"{MAX_ARRAY_SIDE}x{MAX_ARRAY_SIDE} is accepted", 413)
    try:
        a = np.asarray(value)
    except (ValueError, TypeError):
        raise RequestError(f"{rule}; got rows of different lengths or types") from None
    if a.ndim != 2 or a.size == 0:
        raise RequestError(f"{rule}; got an array of shape {a.shape}")
    if a.dtype.kind not in "iuf":
        raise RequestError(f"{rule}; got values of type {a.dtype}")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise RequestError('"pixels" holds NaN or infinite values')
    if a.min() < 0 or a.max() > 1:
        raise RequestError(f'"pixels" values must lie in [0, 1]; got {a.min():g} to {a.max():g}')
    return a.astype(np.float32)


def read_picture(body):
    """The greyscale image sent as "image" (data URL) or "pixels" (2D array): exactly one."""
    if ("image" in body) == ("pixels" in body):
        raise RequestError('send exactly one of "image" (a PNG data URL) or "pixels" '
                           "(a 2D array)")
    if "image" in body:
        return decode_image(*decode_data_url(body["image"]))
    return parse_pixels(body["pixels"])


def check_label(label):
    """A class label that is safe as one folder name; raises RequestError otherwise."""
    if label is None:
        raise RequestError('"label" is missing: name the class this drawing belongs to')
    if not isinstance(label, str):
        raise RequestError(f'"label" must be a string, got {type(label).__name__}')
    if not LABEL_PATTERN.match(label):
        raise RequestError(f'"label" {label[:40]!r} is not allowed: use {LABEL_RULE}')
    if label.lower() in RESERVED_LABELS:
        raise RequestError(f'"label" {label!r} is a reserved device name on Windows')
    return label


def save_drawing(data_dir, label, grey):
    """Write ``grey`` as DATA_DIR/LABEL/<time>-<random>.png (atomically). Returns the path."""
    root = os.path.realpath(data_dir)
    folder = os.path.join(root, check_label(label))
    if os.path.dirname(os.path.realpath(folder)) != root:   # e.g. LABEL is a symlink
        raise RequestError(f"{folder} leads outside {root}; refusing to save there", 403)
    path = os.path.join(folder, f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}.png")
    try:
        with atomic_open(path) as f:
            Image.fromarray(np.round(grey * 255).astype(np.uint8), mode="L").save(f, "PNG")
    except OSError as exc:
        raise RequestError(f"cannot save drawings in {folder}: {exc.strerror or exc}", 500) \
            from None
    return path


def _number(body, key, default, low, high, kind=float):
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise RequestError(f'"{key}" must be {"a number" if kind is float else "an integer"}, '
                           f"got {value!r}")
    if not (low <= value <= high):   # also refuses NaN
        raise RequestError(f'"{key}" must lie in [{low}, {high}], got {value!r}')
    return kind(value)


# ------------------------------------------------------------------------------ the app
def model_names(paths):
    """Names for model files on the page: the file stem, or the run directory's name for
    RUN_DIR/model.npz; a name already taken gets -2, -3, ..."""
    names = {}
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem == "model":
            stem = os.path.basename(os.path.dirname(os.path.abspath(path))) or stem
        name, k = stem, 2
        while name in names:
            name, k = f"{stem}-{k}", k + 1
        names[name] = path
    return names


def _hostname(host):
    """'[::1]:8000' -> '::1', 'localhost:8000' -> 'localhost'."""
    if host.startswith("["):
        return host[1:host.find("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def run_models(runs_dir):
    """{run name: path} of the finished runs RUNS_DIR/NAME/model.npz, sorted by name."""
    if not runs_dir or not os.path.isdir(runs_dir):
        return {}
    found = ((n, os.path.join(runs_dir, n, "model.npz")) for n in sorted(os.listdir(runs_dir)))
    return {name: path for name, path in found if os.path.isfile(path)}


def create_app(models, data_dir=None, threshold=0.5, allowed_hosts=None, runs_dir=None,
               configs_dir=None):
    """A Flask app serving ``models`` (dict: name -> model file path or loaded Sequential).

    data_dir: where "save this drawing" writes DATA_DIR/LABEL/*.png (None: saving is off).
    threshold: answers whose top probability is below it are "not sure" (requests may override).
    allowed_hosts: if given, requests whose Host header names another host are refused
    (protects a loopback server from DNS rebinding).
    runs_dir: where the training lab writes RUNS_DIR/NAME (None: the lab is off); finished
    trainings join the served models. configs_dir: the *.toml configs the lab offers.
    """
    from flask import Flask, jsonify, request, send_from_directory
    from werkzeug.exceptions import BadRequest, HTTPException

    from ..nn.model import Sequential
    from .inspect_api import (ActivationMap, activations, check_ablation, incoming_weights,
                              layer_info, probabilities, robustness_answer)
    from .lab import Lab, parse_config
    if not models and runs_dir is None:
        raise GlyphnetError("no models to serve")
    if not (isinstance(threshold, (int, float)) and 0 <= threshold <= 1):
        raise GlyphnetError(f"threshold must be a number in [0, 1], got {threshold!r}")
    served = {}
    served_lock = threading.Lock()
    for name, m in models.items():
        path = os.fspath(m) if isinstance(m, (str, os.PathLike)) else None
        served[name] = ServedModel(name, Sequential.load(path) if path else m, path,
                                   run_reject_class(path) if path else "")
    default = next(iter(served), None)

    def add_run(name, path):
        """Serve a run the lab finished; returns its name on the page (None if unsuitable)."""
        try:
            model = Sequential.load(path)
            with served_lock:
                unique, k = name, 2
                while unique in served:
                    unique, k = f"{name}-{k}", k + 1
                served[unique] = ServedModel(unique, model, path, run_reject_class(path))
            return unique
        except GlyphnetError as exc:
            print(f"glyphnet serve: warning: not serving {path}: {exc}", file=sys.stderr)
            return None

    lab = None if runs_dir is None else Lab(runs_dir, configs_dir, add_run)
    given = {os.path.abspath(m.path) for m in served.values() if m.path}
    for name, path in run_models(runs_dir).items():
        if os.path.abspath(path) not in given:
            add_run(name, path)

    app = Flask(__name__, static_folder=STATIC_DIR, static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False

    def json_body(allowed):
        if not request.is_json:
            raise RequestError("send a JSON object with Content-Type: application/json", 415)
        try:
            body = request.get_json()
        except (BadRequest, RecursionError) as exc:
            detail = exc.description if isinstance(exc, BadRequest) else "nested too deeply"
            raise RequestError(f"the body is not valid JSON ({detail})") from None
        if not isinstance(body, dict):
            raise RequestError("the body must be a JSON object, e.g. "
                               '{"image": "data:image/png;base64,..."}')
        unknown = sorted(set(body) - set(allowed))
        if unknown:
            raise RequestError(f"unknown field(s) {', '.join(map(repr, unknown))}; expected "
                               f"{', '.join(map(repr, allowed))}")
        return body

    def pick_model(body):
        name = body.get("model", default or next(iter(served), None))
        if not served:
            raise RequestError("no models yet: train one in the Train tab", 404)
        if not isinstance(name, str) or name not in served:
            raise RequestError(f"unknown model {name!r}; served: {', '.join(served)}", 404)
        return served[name]

    @app.before_request
    def check_host():
        if allowed_hosts is not None and _hostname(request.host) not in allowed_hosts:
            raise RequestError(f"unexpected Host header {request.host!r}", 400)
        origin = request.headers.get("Origin")
        if request.method == "POST" and origin is not None and \
                origin != f"{request.scheme}://{request.host}":
            raise RequestError(f"requests from {origin[:100]!r} are refused: only this "
                               "server's own page may send them", 403)

    @app.before_request
    def bound_chunked_body():
        """Read a chunked body (no Content-Length) here, up to the limit, so one over it is a
        413 like any other (werkzeug would cut it short and the JSON would look broken)."""
        if request.headers.get("Content-Length") is None and \
                "chunked" in request.headers.get("Transfer-Encoding", "").lower():
            data = request.environ["wsgi.input"].read(MAX_BODY_BYTES + 1)
            if len(data) > MAX_BODY_BYTES:
                raise RequestError(f"request body too large: at most {MAX_BODY_BYTES} bytes",
                                   413)
            request.environ["wsgi.input"] = io.BytesIO(data)

    @app.after_request
    def headers(response):
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
        if request.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(RequestError)
    def request_error(exc):
        return jsonify(error=exc.message), exc.status

    @app.errorhandler(GlyphnetError)
    def glyphnet_error(exc):
        """A problem glyphnet explains in one line (a missing optional package, a bad file)."""
        return jsonify(error=str(exc)), 400

    @app.errorhandler(HTTPException)
    def http_error(exc):
        message = {413: f"request body too large: at most {MAX_BODY_BYTES} bytes"}.get(
            exc.code, exc.description)
        return jsonify(error=message), exc.code

    @app.errorhandler(Exception)
    def internal_error(exc):
        app.logger.exception("unexpected error")
        return jsonify(error=f"internal error ({type(exc).__name__}); see the server log"), 500

    @app.get("/")
    def index():
        return send_from_directory(STATIC_DIR, "index.html")

    @app.get("/api/models")
    def list_models():
        return jsonify(models=[m.describe() for m in list(served.values())],
                       default=default or next(iter(served), None),
                       threshold=threshold, saving=data_dir is not None,
                       save_dir=None if data_dir is None else os.path.abspath(data_dir),
                       label_rule=LABEL_RULE, lab=lab is not None)

    @app.post("/api/predict")
    def predict():
        body = json_body(("model", "image", "pixels", "threshold", "top"))
        m = pick_model(body)
        t = _number(body, "threshold", threshold, 0, 1)
        top = _number(body, "top", min(DEFAULT_TOP, len(m.classes)), 1, len(m.classes), int)
        return jsonify(m.predict(read_picture(body), t, top))

    @app.post("/api/save")
    def save():
        if data_dir is None:
            raise RequestError("saving is off: start the server with --save-dir DIR", 403)
        body = json_body(("label", "image", "pixels"))
        label = check_label(body.get("label"))
        grey = read_picture(body)
        path = save_drawing(data_dir, label, grey)
        folder = os.path.dirname(path)
        count = sum(n.endswith(".png") for n in os.listdir(folder))
        return jsonify(label=label, path=os.path.relpath(path, os.path.realpath(data_dir)),
                       count=count)


    # -------------------------------------------------------------------- inspecting
    def model_input(m, body):
        x = m.inputs(read_picture(body))[1]
        if x is None:
            raise RequestError("the image is blank: draw something first")
        return x

    def evaluation_data(m):
        if "test" not in m.cache:
            from ..inspection.robustness import evaluation_set
            try:
                m.cache["test"] = evaluation_set(m.model, m.path)
            except GlyphnetError as exc:
                raise RequestError(str(exc), 409) from None
        return m.cache["test"]

    def activation_map(m):
        if "map" not in m.cache:
            m.cache["map"] = ActivationMap(m.model, *evaluation_data(m), m.lock)
        return m.cache["map"]

    def layer_index(m, body):
        return _number(body, "layer", 0, 0, len(m.model.layers) - 1, int)

    @app.post("/api/inspect")
    def inspect():
        body = json_body(("model", "image", "pixels", "ablate"))
        m = pick_model(body)
        ablate = body.get("ablate", [])
        if not isinstance(ablate, list):
            raise RequestError('"ablate" must be a list of [layer, unit] pairs')
        try:
            off = check_ablation(m.model, ablate)
        except ValueError as exc:
            raise RequestError(str(exc)) from None
        x = model_input(m, body)
        with m.lock:
            p = probabilities(m.model, x, off)[0]
            base = probabilities(m.model, x)[0] if off else p
            layers = activations(m.model, x, off)
        order = np.argsort(p)[::-1]
        return jsonify(model=m.name, layers=[{**info, "values": v} for info, v in
                                             zip(layer_info(m.model), layers)],
                       prediction=m.classes[int(order[0])],
                       classes=[{"label": m.classes[i], "probability": float(p[i]),
                                 "before": float(base[i])} for i in order],
                       ablated=sorted([i, u] for i, units in off.items() for u in units))

    @app.post("/api/weights")
    def weights():
        body = json_body(("model", "layer", "unit"))
        m = pick_model(body)
        i = layer_index(m, body)
        unit = _number(body, "unit", 0, 0, m.model.layers[i].output_shape[-1] - 1, int)
        found = incoming_weights(m.model, i, unit)
        return jsonify(model=m.name, unit=unit, **(found or {"layer": None}))

    @app.post("/api/map")
    def map_():
        body = json_body(("model", "layer", "method", "image", "pixels"))
        m = pick_model(body)
        i = layer_index(m, body)
        method = body.get("method", "pca")
        if method not in ("pca", "tsne"):
            raise RequestError(f'"method" must be "pca" or "tsne", got {method!r}')
        drawing = m.inputs(read_picture(body))[1] if "image" in body or "pixels" in body \
            else None
        answer = activation_map(m).answer(i, method, drawing)
        return jsonify(model=m.name, classes=m.classes, **answer)

    @app.post("/api/sample")
    def sample():
        body = json_body(("model", "index"))
        m = pick_model(body)
        amap = activation_map(m)
        i = _number(body, "index", 0, 0, len(amap.y) - 1, int)
        return jsonify(model=m.name, **amap.sample(i))

    @app.post("/api/robustness")
    def robustness_curves():
        body = json_body(("model", "limit"))
        m = pick_model(body)
        limit = _number(body, "limit", 1000, 10, 10000, int)
        key = ("robustness", limit)
        if key not in m.cache:
            m.cache[key] = robustness_answer(m.model, *evaluation_data(m), limit, m.lock)
        return jsonify(model=m.name, **m.cache[key])

    # -------------------------------------------------------------------- training lab
    def the_lab():
        if lab is None:
            raise RequestError("the training lab is off: start the server with --runs-dir", 403)
        return lab

    def session(sid):
        s = the_lab().get(sid)
        if s is None:
            raise RequestError(f"no training {sid!r}", 404)
        return s

    @app.errorhandler(ConfigError)
    def config_error(exc):
        return jsonify(error=f"{len(exc.problems)} problem(s) in the config",
                       problems=exc.problems), 400

    @app.get("/api/lab")
    def lab_info():
        lb = the_lab()
        return jsonify(runs_dir=os.path.abspath(lb.runs_dir), configs=lb.configs(),
                       sessions=[s.describe() for s in list(lb.sessions.values())])

    def lab_config(body):
        return parse_config(body.get("config"), body.get("epochs"), body.get("lr"))

    @app.post("/api/lab/check")
    def lab_check():
        the_lab()
        cfg = lab_config(json_body(("config", "epochs", "lr", "name")))
        return jsonify(ok=True, dataset=cfg["data"]["dataset"], epochs=cfg["training"]["epochs"],
                       layers=[layer["type"] for layer in cfg["model"]["layers"]])

    @app.post("/api/lab/start")
    def lab_start():
        lb = the_lab()
        body = json_body(("config", "epochs", "lr", "name"))
        cfg = lab_config(body)
        busy = lb.running()
        if busy:   # one at a time: trainings share the CPU with the server and each other
            raise RequestError(f"{busy[0].name} is still training: stop it or wait for it to "
                               "finish", 409)
        s = lb.start(cfg, body.get("name") or time.strftime("lab-%Y%m%d-%H%M%S"))
        return jsonify(s.describe())

    @app.get("/api/lab/<sid>")
    def lab_events(sid):
        s = session(sid)
        since = request.args.get("since", "0")
        if not since.isdigit():
            raise RequestError(f'"since" must be an event number, got {since[:20]!r}')
        return jsonify(**s.describe(), new=s.wait(int(since), 0))

    @app.get("/api/lab/<sid>/events")
    def lab_stream(sid):
        s = session(sid)
        start = request.headers.get("Last-Event-ID", request.args.get("since", "0"))
        start = int(start) + ("Last-Event-ID" in request.headers) if start.isdigit() else 0

        def stream(i):
            while True:
                events = s.wait(i, 15)
                if not events and s.done and i >= len(s.events):
                    yield "event: end\ndata: {}\n\n"
                    return
                if not events:
                    yield ": still training\n\n"   # keeps proxies and the browser patient
                for e in events:
                    yield f"id: {e['id']}\ndata: {json.dumps(e)}\n\n"
                i += len(events)
        return app.response_class(stream(start), mimetype="text/event-stream",
                                  headers={"Cache-Control": "no-store"})

    @app.post("/api/lab/<sid>/stop")
    def lab_stop(sid):
        json_body(())
        s = session(sid)
        s.stop()
        return jsonify(s.describe())

    app.served, app.lab = served, lab   # for the server: what it serves, trainings to stop
    return app
