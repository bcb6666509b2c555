"""glyphnet export: write a trained model in a format other frameworks read (ONNX)."""


def add_parser(sub):
    p = sub.add_parser("export", help="export a model to ONNX (for onnxruntime, Netron, ...)")
    p.add_argument("model", help="model.npz written by glyphnet train")
    p.add_argument("--onnx", required=True, metavar="OUT.onnx",
                   help="where to write the ONNX model (it takes [0, 1] NHWC images)")
    p.add_argument("--no-scaler", action="store_true",
                   help="leave the input scaling out: the graph then takes scaled inputs")
    return p


def run(args):
    from ..interop.onnx import to_onnx
    from ..nn.model import Sequential
    model = Sequential.load(args.model)
    proto = to_onnx(model, args.onnx, scaler=not args.no_scaler)
    print(f"wrote {args.onnx}: {len(proto.graph.node)} nodes, opset "
          f"{proto.opset_import[0].version}, input 'images' (N, "
          f"{', '.join(map(str, model.input_shape))}), output 'outputs' (N, "
          f"{', '.join(map(str, model.output_shape))})")
    return 0
