"""HTTP service: `POST /v1/predict` (multipart field `image`), `GET /healthz`, `GET /metrics`,
`GET /` (a page).

The model is loaded once per process; at most `max_inflight` predictions run at once, in threads,
so the event loop keeps answering. Limits, keys and back-pressure act before the body is read
(`facepad.serve.middleware`). Uploads are checked by decoding, not by their name: every bad request
gets a 4xx JSON error and the server keeps serving. What a response gives away is chosen by
`response` (decision | score | full): a public score and threshold help an attacker tune a spoof.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import logging
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from fastapi import FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware

from facepad.infer.predictor import FaceChoice, FacePrediction, Predictor
from facepad.serve.metrics import ServeMetrics
from facepad.serve.middleware import (
    PREDICT_PATH,
    AdmissionGate,
    ApiKeyAuth,
    BodyLimit,
    Capacity,
    RequestLog,
    access_logger,
)
from facepad.serve.settings import ServeSettings, load_api_keys

MAX_UPLOAD_BYTES = ServeSettings.max_upload_bytes
MAX_PIXELS = ServeSettings.max_pixels  # a 7,000 x 5,700 photo; bigger images are refused early
MULTIPART_OVERHEAD = 16 * 1024  # body bytes allowed beyond the file: boundaries and part headers
PUBLIC_PATHS = {"/", "/healthz"}  # answer without an API key
PAGE = Path(__file__).with_name("page.html")
logger = logging.getLogger("facepad.serve")


class BadImage(Exception):
    """An upload we refuse: HTTP status and a message that says what to send instead."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def depth_png_base64(depth: np.ndarray) -> str:
    """(h, w) float depth in [0, 1] -> base64 PNG (gray, nearer = brighter)."""
    import cv2

    ok, buf = cv2.imencode(".png", (np.clip(depth, 0.0, 1.0) * 255).astype(np.uint8))
    if not ok:
        raise RuntimeError("PNG encoding of a depth map failed")
    return base64.b64encode(buf.tobytes()).decode("ascii")


def decode_upload(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Upload bytes -> (H, W, 3) uint8 RGB, checking size from the header before decoding."""
    from PIL import Image, UnidentifiedImageError

    from facepad.data.images import load_image

    if not data:
        raise BadImage(400, "empty upload: send a JPEG or PNG photo in the field 'image'")
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
    except Image.DecompressionBombError as exc:
        raise BadImage(413, f"image too large ({exc}); resize it and retry") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise BadImage(
            415, "the upload is not an image format we can read; send a JPEG or PNG photo"
        ) from exc
    if width * height > max_pixels:
        raise BadImage(
            413,
            f"image is {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{max_pixels:,}; resize it and retry",
        )
    try:
        return load_image(data)
    except Exception as exc:  # truncated or corrupt content that only decoding reveals
        raise BadImage(
            400, f"the image could not be decoded ({exc}); the file may be truncated or corrupt"
        ) from exc


def face_json(face: FacePrediction, mode: str, all_faces: bool) -> dict[str, Any]:
    """One face as the response mode allows: decision < score < full (depth map, threshold)."""
    out: dict[str, Any] = {"box": [int(v) for v in face.box], "decision": face.decision}
    if mode in ("score", "full"):
        out["score"] = round(float(face.score), 6)
    if mode == "full":
        out["detector_score"] = round(float(face.detector_score), 4)
        out["threshold"] = float(face.threshold)
        if face.depth is not None:
            out["depth_png"] = depth_png_base64(face.depth)
            out["depth_size"] = list(face.depth.shape)
    if all_faces:
        out["chosen"] = face.chosen
    return out


def configure_access_log(target: str) -> None:
    """JSON lines to stderr ("-"), appended to a file, or nowhere ("off")."""
    for handler in list(access_logger.handlers):
        access_logger.removeHandler(handler)
        handler.close()
    access_logger.propagate = False
    access_logger.setLevel(logging.INFO)
    if target == "off":
        return
    handler = logging.StreamHandler(sys.stderr) if target == "-" else logging.FileHandler(target)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access_logger.addHandler(handler)


def create_app(
    predictor: Predictor, settings: ServeSettings | None = None, **overrides: Any
) -> FastAPI:
    """The FastAPI app around one loaded Predictor (warmed up, so the first request is not slow).

    `overrides` replace fields of `settings` (e.g. `max_upload_bytes=...`, `response="full"`).
    """
    settings = dataclasses.replace(settings or ServeSettings(), **overrides).check()
    predictor.face_choice = FaceChoice(
        settings.faces == "largest", settings.min_detector_score, settings.min_face_fraction
    )
    if settings.threshold is not None:
        predictor.threshold, predictor.threshold_source = float(settings.threshold), "given"
    predictor.predict_rgb([np.zeros((64, 64, 3), np.uint8)])  # builds the face detector graph
    keys = load_api_keys(settings.api_key_file)
    configure_access_log(settings.access_log)
    app = FastAPI(
        title="facepad",
        description="Face presentation attack detection",
        docs_url="/docs" if settings.docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs else None,
        form_limits={"max_files": 1, "max_fields": 8},
    )
    metrics = ServeMetrics()
    capacity = Capacity(settings.max_inflight, settings.max_queue, settings.retry_after_s, metrics)
    app.state.predictor = predictor
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.capacity = capacity
    add_error_handlers(app, settings)
    add_routes(app, predictor, settings, metrics, capacity, bool(keys))
    known = {route.path for route in app.routes}
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_upload_bytes + MULTIPART_OVERHEAD,
        message=upload_too_large(settings),
    )
    app.add_middleware(AdmissionGate, capacity=capacity)
    if keys:
        app.add_middleware(ApiKeyAuth, keys=keys, public_paths=PUBLIC_PATHS)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    app.add_middleware(
        RequestLog,
        metrics=metrics,
        known_paths=known,
        trust_upstream_id=settings.trust_request_id,
    )
    return app


def error(request: Request, status: int, message: str, headers=None) -> JSONResponse:
    """The one shape of every error body: what went wrong and how to fix it, and the request id."""
    body = {"error": message, "request_id": getattr(request.state, "request_id", None)}
    return JSONResponse(status_code=status, content=body, headers=headers)


def upload_too_large(settings: ServeSettings) -> str:
    return f"upload over {settings.max_upload_bytes:,} bytes; send a smaller photo"


def add_error_handlers(app: FastAPI, settings: ServeSettings) -> None:

    @app.exception_handler(BadImage)
    async def _bad_image(request: Request, exc: BadImage) -> JSONResponse:
        return error(request, exc.status, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        message = f"invalid request ({where}); send the photo as multipart file 'image'"
        return error(request, 422, message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(request, exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:  # never the exception text
        return error(request, 500, "internal error; the server logged it under this request id")


def add_routes(
    app: FastAPI,
    predictor: Predictor,
    settings: ServeSettings,
    metrics: ServeMetrics,
    capacity: Capacity,
    keys_required: bool,
) -> None:
    """Every route of the service on `app`; `create_app` adds the middleware around them."""
    _add_info_routes(app, predictor, settings.response, metrics, keys_required)
    _add_predict_route(app, predictor, settings, metrics, capacity)


def _add_info_routes(
    app: FastAPI, predictor: Predictor, mode: str, metrics: ServeMetrics, keys_required: bool
) -> None:
    """The page, the health check and the Prometheus metrics."""
    page = PAGE.read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        """Liveness of the service (open to all); model details and threshold only in `full`."""
        out: dict[str, Any] = {"status": "ok", "response": mode, "api_key": keys_required}
        if mode == "full":
            out.update(predictor.describe())
            out["faces"] = dataclasses.asdict(predictor.face_choice)
        return out

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)


def _add_predict_route(
    app: FastAPI,
    predictor: Predictor,
    settings: ServeSettings,
    metrics: ServeMetrics,
    capacity: Capacity,
) -> None:
    """POST /v1/predict: one photo in, the decision on its face (and the others') out."""
    mode = settings.response

    def run_model(data: bytes, all_faces: bool) -> tuple[tuple[int, int], list[dict], list]:
        """In a worker thread: decode, detect, score, and the response's face dicts."""
        rgb = decode_upload(data, settings.max_pixels)
        faces = predictor.predict_rgb([rgb], all_faces=all_faces)[0]
        return rgb.shape[:2], [face_json(f, mode, all_faces) for f in faces], faces

    @app.post(PREDICT_PATH)
    async def predict(
        request: Request, image: UploadFile | None = File(None), all_faces: bool = False
    ) -> JSONResponse:
        """Decide live or spoof on the face in the photo (`all_faces=true`: report the others)."""
        if image is None:
            return error(
                request,
                400,
                "no file in the multipart field 'image'; send e.g. "
                "`curl -F image=@face.jpg http://HOST/v1/predict`",
            )
        data = await image.read(settings.max_upload_bytes + 1)
        if len(data) > settings.max_upload_bytes:
            return error(request, 413, upload_too_large(settings))
        start = time.perf_counter()
        async with capacity.limiter():
            metrics.inflight.inc()
            try:
                size, faces_out, faces = await anyio.to_thread.run_sync(run_model, data, all_faces)
            except BadImage:
                raise
            except Exception:  # a model failure answers this request only; serving goes on
                logger.exception("prediction failed (request %s)", request.state.request_id)
                return error(
                    request, 500, "prediction failed; the server logged it under this request id"
                )
            finally:
                metrics.inflight.dec()
        return JSONResponse(_prediction_body(request, predictor, mode, size, faces_out, faces,
                                             start))  # fmt: skip


def _prediction_body(
    request: Request, predictor: Predictor, mode: str, size: tuple[int, int],
    faces_out: list[dict], faces: list, start: float,
) -> dict[str, Any]:  # fmt: skip
    """The JSON answer; the decision and face count also go on the request for the access log."""
    chosen = [f for f in faces if f.chosen]
    decision = chosen[0].decision if chosen else "no_face"
    request.state.faces = len(faces)
    request.state.decision = decision
    request.state.decisions = [f.decision for f in faces]
    body: dict[str, Any] = {
        "decision": decision,
        "faces": faces_out,
        "width": int(size[1]),
        "height": int(size[0]),
        "latency_ms": round((time.perf_counter() - start) * 1000, 2),
        "request_id": request.state.request_id,
    }
    if mode == "full":
        body["model"] = predictor.model_name
        body["threshold"] = predictor.threshold
    return body


def app_from_settings(settings: ServeSettings) -> FastAPI:
    """Load the settings' `.pt` (torch) or `.onnx` (onnxruntime) model once, build the app."""
    predictor = Predictor.from_path(
        settings.model, threads=settings.threads, threshold=settings.threshold
    )
    return create_app(predictor, settings)


def app_from_env() -> FastAPI:
    """uvicorn factory for `--workers N`: each worker process builds its app from the settings
    the CLI put in FACEPAD_SERVE_SETTINGS (so each loads the model once)."""
    return app_from_settings(ServeSettings.from_env())


def app_from_path(model_path: str | Path, threads: int | None = None, **settings: Any) -> FastAPI:
    """Load a `.pt` (torch) or `.onnx` (onnxruntime) model once and build the app around it."""
    return app_from_settings(ServeSettings(model=str(model_path), threads=threads, **settings))
