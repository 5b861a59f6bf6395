"""`facepad serve`: the HTTP service around one model (a .pt checkpoint or an exported .onnx),
in one process, in `--workers N` processes on one port, or as a Ray Serve deployment (`--ray`);
and `facepad batch-score`: a large image list scored with Ray Data over the same Predictor."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path


def register(subparsers) -> None:
    """Add `serve` and `batch-score` to the `facepad` parser."""
    _add_serve(subparsers)
    _add_batch_score(subparsers)


def _add_serve(subparsers) -> None:
    from facepad.infer.commands import add_face_choice_arguments
    from facepad.serve.settings import API_KEYS_ENV, RESPONSE_MODES, ServeSettings

    d = ServeSettings()
    s = subparsers.add_parser(
        "serve",
        help="serve a model over HTTP with a web page",
        description="POST /v1/predict (multipart field 'image'), GET /healthz, GET /metrics, "
        "GET / (page). Safe defaults: loopback only, no /docs, CORS closed, decisions without "
        "scores, bounded uploads and queue.",
    )
    s.add_argument(
        "model",
        type=Path,
        nargs="?",
        help="a .pt checkpoint (torch) or .onnx (onnxruntime); default: the model that ships "
        "with facepad",
    )
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--workers", type=int, default=1, help="processes serving the one port")
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
    s.add_argument(
        "--max-inflight",
        type=int,
        default=d.max_inflight,
        help=f"predictions running at once per process (default {d.max_inflight})",
    )
    s.add_argument(
        "--max-queue",
        type=int,
        default=d.max_queue,
        help=f"predictions waiting per process before 503 + Retry-After (default {d.max_queue})",
    )
    s.add_argument(
        "--response",
        choices=RESPONSE_MODES,
        default=d.response,
        help="what a prediction returns: decision and face box; + score; + depth map and "
        "threshold (default decision: scores help attackers tune a spoof)",
    )
    add_face_choice_arguments(s, default="largest")
    s.add_argument(
        "--api-key-file",
        help=f"require one of these keys (one a line); keys also come from ${API_KEYS_ENV}",
    )
    s.add_argument("--docs", action="store_true", help="serve /docs and /openapi.json")
    s.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        help="allow browsers on this origin (repeatable; default: no cross-origin access)",
    )
    s.add_argument(
        "--access-log",
        default="-",
        help="JSON-lines access log: '-' stderr (default), a file to append to, or 'off'",
    )
    _add_ray_arguments(s)
    s.set_defaults(func=run_serve)


def _add_ray_arguments(s: argparse.ArgumentParser) -> None:
    ray = s.add_argument_group("Ray Serve (pip install 'facepad[ray]')")
    ray.add_argument("--ray", action="store_true", help="deploy on Ray Serve instead of uvicorn")
    ray.add_argument("--ray-address", default=None, help="a running Ray cluster (default: local)")
    ray.add_argument("--ray-config", type=Path, help="YAML of Ray Serve deployment options")
    ray.add_argument("--replicas", type=int, help="fixed number of replicas")
    ray.add_argument("--autoscale-min", type=int, help="autoscaling: fewest replicas")
    ray.add_argument("--autoscale-max", type=int, help="autoscaling: most replicas")
    ray.add_argument(
        "--target-ongoing-requests", type=float, help="autoscaling: requests per replica"
    )


def _add_batch_score(subparsers) -> None:
    from facepad.infer.commands import add_face_choice_arguments

    b = subparsers.add_parser(
        "batch-score",
        help="score a large image list with Ray Data",
        description="Score every image of a list (text file, one path a line) on a Ray cluster "
        "(default: a local one) with the same Predictor as predict and serve; writes a CSV, "
        "resumes where a killed run stopped, records unreadable files instead of failing.",
    )
    b.add_argument("images", type=Path, help="text file: one image path a line")
    b.add_argument("--model", type=Path, required=True, help="a .pt checkpoint or .onnx")
    b.add_argument("--out", type=Path, required=True, help="CSV to write (appended on resume)")
    b.add_argument("--actors", type=int, default=2, help="Predictor copies (one per CPU)")
    b.add_argument("--batch-size", type=int, default=16, help="images per model call")
    b.add_argument("--ray-address", default=None, help="a running Ray cluster (default: local)")
    b.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray instance")
    add_face_choice_arguments(b, default="largest")
    b.set_defaults(func=run_batch_score)


def settings_from_args(args: argparse.Namespace):
    from facepad.serve.settings import ServeSettings

    return ServeSettings(
        model=str(args.model),
        threads=args.threads,
        threshold=args.threshold,
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        max_pixels=int(args.max_megapixels * 1_000_000),
        max_inflight=args.max_inflight,
        max_queue=args.max_queue,
        response=args.response,
        faces="largest" if args.faces == "largest" else "all",
        min_detector_score=args.min_detector_score,
        min_face_fraction=args.min_face_fraction,
        api_key_file=args.api_key_file,
        docs=args.docs,
        cors_origins=list(args.cors_origin),
        access_log=args.access_log,
    ).check()


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from facepad.infer.predictor import PredictorError
    from facepad.serve.settings import SETTINGS_ENV, SettingsError, load_api_keys

    try:
        if args.model is None:
            from facepad.infer.shipped import shipped_model_path

            args.model = shipped_model_path()
        settings = settings_from_args(args)
        keys = load_api_keys(settings.api_key_file)
        if not args.model.is_file():
            raise PredictorError(f"model file {args.model} not found; pass a .pt or .onnx")
        if args.workers < 1:
            raise SettingsError("--workers must be at least 1")
    except (PredictorError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    where = f"http://{args.host}:{args.port}/"
    note = f"keys: {len(keys)}" if keys else "no API key required"
    if args.ray:
        from facepad.serve.ray_serve import run_ray_serve

        return run_ray_serve(settings, args)
    options = {"host": args.host, "port": args.port, "log_level": "warning", "access_log": False}
    options["server_header"] = False
    if args.workers == 1:
        from facepad.serve.app import app_from_settings

        try:
            app = app_from_settings(settings)
        except PredictorError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"facepad serving {args.model} on {where} ({note})", file=sys.stderr)
        uvicorn.run(app, **options)
        return 0
    os.environ[SETTINGS_ENV] = settings.to_env()
    with tempfile.TemporaryDirectory(prefix="facepad-metrics-") as metrics_dir:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # /metrics adds up all workers
        print(
            f"facepad serving {args.model} on {where} with {args.workers} workers ({note})",
            file=sys.stderr,
        )
        uvicorn.run("facepad.serve.app:app_from_env", factory=True, workers=args.workers, **options)
    return 0


def run_batch_score(args: argparse.Namespace) -> int:
    from facepad.infer.commands import face_choice_from_args
    from facepad.serve.ray_batch import score_image_list

    if not args.images.is_file() or not args.model.is_file():
        missing = args.images if not args.images.is_file() else args.model
        print(f"error: {missing} not found", file=sys.stderr)
        return 2
    summary = score_image_list(
        args.images,
        args.model,
        args.out,
        face_choice=face_choice_from_args(args),
        actors=args.actors,
        batch_size=args.batch_size,
        address=args.ray_address,
        num_cpus=args.num_cpus,
    )
    print(
        f"scored {summary['scored']} images ({summary['skipped_done']} already done, "
        f"{summary['errors']} unreadable or without a face) into {args.out}",
        file=sys.stderr,
    )
    return 0
