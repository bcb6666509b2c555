"""glyphnet serve: the drawing pad and JSON API in the browser."""
import os

from ..errors import GlyphnetError
from .args import port, probability


def add_parser(sub):
    p = sub.add_parser("serve", help="a drawing pad in the browser for trained models",
                       description="Serve a web page where you draw a character and watch the "
                                   "models recognise it, plus a JSON API (/api/predict, "
                                   "/api/models, /api/save).")
    p.add_argument("models", nargs="+", metavar="MODEL", help="model.npz files to serve")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=port, default=8000, help="port (default 8000; 0: any free)")
    p.add_argument("--save-dir", default="drawings",
                   help="image-folder data set that saved drawings go to, one sub-folder per "
                        "label (default ./drawings)")
    p.add_argument("--threshold", type=probability, default=0.5,
                   help="answer 'not sure' below this top probability (default 0.5)")
    return p


def run(args):
    from werkzeug.serving import make_server

    from ..web.app import LOOPBACK_HOSTS, create_app, model_names
    names = model_names(args.models)
    loopback = args.host in LOOPBACK_HOSTS
    app = create_app(names, data_dir=args.save_dir, threshold=args.threshold,
                     allowed_hosts=LOOPBACK_HOSTS if loopback else None)
    try:
        server = make_server(args.host, args.port, app, threaded=True)
    except OSError as exc:
        raise GlyphnetError(f"cannot listen on {args.host}:{args.port}: "
                            f"{exc.strerror or exc}; choose another --port") from None
    host = f"[{args.host}]" if ":" in args.host else args.host
    for name, path in names.items():
        print(f"model {name}: {path}")
    print(f"saving drawings under {os.path.abspath(args.save_dir)}/LABEL/")
    if not loopback:
        print(f"warning: listening on {args.host}, so other machines can reach this server")
    print(f"drawing pad at http://{host}:{server.server_port}/  (Ctrl+C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        server.server_close()
    return 0
