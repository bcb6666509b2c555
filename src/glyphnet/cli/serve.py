"""glyphnet serve: the drawing pad, training lab and layer inspector in the browser."""
import os
import socket

from ..errors import GlyphnetError
from .args import port, probability

# The configs shipped in the source tree (configs/*.toml), offered by the training lab.
SHIPPED_CONFIGS = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "..",
                                                "configs"))


def add_parser(sub):
    p = sub.add_parser("serve", help="a drawing pad, training lab and inspector in the browser",
                       description="Serve a web page where you draw a character and watch the "
                                   "models recognise it, train a model live, look at every "
                                   "layer, a map of the test set and robustness curves; plus a "
                                   "JSON API (/api/predict, /api/models, /api/save, ...).")
    p.add_argument("models", nargs="*", metavar="MODEL",
                   help="model.npz files to serve (the finished runs in --runs-dir are served "
                        "too)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=port, default=8000, help="port (default 8000; 0: any free)")
    p.add_argument("--save-dir", default="drawings",
                   help="image-folder data set that saved drawings go to, one sub-folder per "
                        "label (default ./drawings)")
    p.add_argument("--threshold", type=probability, default=0.5,
                   help="answer 'not sure' below this top probability (default 0.5)")
    p.add_argument("--runs-dir", default="runs",
                   help="where trainings started on the page write RUN_NAME/ (default ./runs)")
    p.add_argument("--configs-dir", default=SHIPPED_CONFIGS if os.path.isdir(SHIPPED_CONFIGS)
                   else None, help="the *.toml configs the training lab offers (default: the "
                                   "shipped configs/ folder)")
    return p


def run(args):
    from werkzeug.serving import make_server

    from ..web.app import LOOPBACK_HOSTS, create_app, model_names
    names = model_names(args.models)
    loopback = args.host in LOOPBACK_HOSTS
    app = create_app(names, data_dir=args.save_dir, threshold=args.threshold,
                     allowed_hosts=LOOPBACK_HOSTS if loopback else None,
                     runs_dir=args.runs_dir, configs_dir=args.configs_dir)
    try:   # werkzeug would print a bare resolver message and exit
        socket.getaddrinfo(args.host, args.port)
    except (socket.gaierror, UnicodeError) as exc:
        raise GlyphnetError(f"cannot listen on {args.host}: the host name does not resolve "
                            f"({exc}); use an address of this machine, e.g. 127.0.0.1") from None
    try:
        server = make_server(args.host, args.port, app, threaded=True)
    except OSError as exc:
        raise GlyphnetError(f"cannot listen on {args.host}:{args.port}: "
                            f"{exc.strerror or exc}; choose another --port") from None
    host = f"[{args.host}]" if ":" in args.host else args.host
    for m in app.served.values():
        print(f"model {m.name}: {m.path}")
    if not app.served:
        print("no models yet: train one on the page")
    print(f"saving drawings under {os.path.abspath(args.save_dir)}/LABEL/")
    print(f"trainings started on the page write {os.path.abspath(args.runs_dir)}/NAME/")
    if not loopback:
        print(f"warning: listening on {args.host}, so other machines can reach this server")
    print(f"drawing pad at http://{host}:{server.server_port}/  (Ctrl+C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        app.lab.stop_all()
        server.server_close()
    return 0
