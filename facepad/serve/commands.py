"""`facepad serve`: the HTTP service around one model (a .pt checkpoint or an exported .onnx)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    """Add `serve` to the `facepad` parser."""
    s = subparsers.add_parser(
        "serve",
        help="serve a model over HTTP with a web page",
        description="POST /v1/predict (multipart field 'image'), GET /healthz, GET / (page).",
    )
    s.add_argument("model", type=Path, help="a .pt checkpoint (torch) or .onnx (onnxruntime)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--threads", type=int, default=None, help="CPU threads for the model")
    s.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="decision threshold, live when score >= T (default: the model's calibrated one; "
        "an uncalibrated model needs it)",
    )
    s.add_argument("--max-upload-mb", type=float, default=15.0, help="largest upload accepted")
    s.add_argument("--max-megapixels", type=float, default=40.0, help="largest image accepted")
    s.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from facepad.infer.predictor import PredictorError
    from facepad.serve.app import app_from_path

    try:
        app = app_from_path(
            args.model,
            threads=args.threads,
            threshold=args.threshold,
            max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
            max_pixels=int(args.max_megapixels * 1_000_000),
        )
    except PredictorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"facepad serving {args.model} on http://{args.host}:{args.port}/", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
