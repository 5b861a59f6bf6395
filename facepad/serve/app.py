"""HTTP service: `POST /v1/predict` (multipart field `image`), `GET /healthz`, `GET /` (a page).

The model is loaded once; inference runs in the threadpool so the event loop keeps answering.
Uploads are checked by decoding, not by their name: every bad request gets a 4xx JSON error and
the server keeps serving.
"""

from __future__ import annotations

import base64
import io
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from facepad.infer.predictor import FacePrediction, Predictor

MAX_UPLOAD_BYTES = 15 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a 7,000 x 5,700 photo; bigger images are refused before decoding
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


def face_json(face: FacePrediction) -> dict[str, Any]:
    out = face.to_dict()
    if face.depth is not None:
        out["depth_png"] = depth_png_base64(face.depth)
        out["depth_size"] = list(face.depth.shape)
    return out


def create_app(
    predictor: Predictor,
    *,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    max_pixels: int = MAX_PIXELS,
) -> FastAPI:
    """The FastAPI app around one loaded Predictor (warmed up, so the first request is not slow)."""
    predictor.predict_rgb([np.zeros((64, 64, 3), np.uint8)])  # builds the face detector graph
    app = FastAPI(title="facepad", description="Face presentation attack detection")
    app.state.predictor = predictor
    page = PAGE.read_text(encoding="utf-8")

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse(status_code=status, content={"error": message})

    @app.exception_handler(BadImage)
    async def _bad_image(_: Request, exc: BadImage) -> JSONResponse:
        return error(exc.status, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return error(422, f"invalid request ({where}); send the photo as multipart file 'image'")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", **predictor.describe()}

    @app.post("/v1/predict")
    async def predict(request: Request, image: UploadFile | None = File(None)) -> JSONResponse:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_upload_bytes + 4096:
            return error(413, f"upload over {max_upload_bytes:,} bytes; send a smaller photo")
        if image is None:
            return error(
                400,
                "no file in the multipart field 'image'; send e.g. "
                "`curl -F image=@face.jpg http://HOST/v1/predict`",
            )
        data = await image.read(max_upload_bytes + 1)
        if len(data) > max_upload_bytes:
            return error(413, f"upload over {max_upload_bytes:,} bytes; send a smaller photo")
        start = time.perf_counter()
        rgb = await run_in_threadpool(decode_upload, data, max_pixels)
        try:
            faces = await run_in_threadpool(predictor.predict_rgb, [rgb])
            faces_out = await run_in_threadpool(lambda: [face_json(f) for f in faces[0]])
        except Exception as exc:  # a model failure answers this request only; serving goes on
            logger.exception("prediction failed")
            return error(500, f"prediction failed ({type(exc).__name__}: {exc})")
        return JSONResponse(
            {
                "width": int(rgb.shape[1]),
                "height": int(rgb.shape[0]),
                "faces": faces_out,
                "model": predictor.model_name,
                "threshold": predictor.threshold,
                "latency_ms": round((time.perf_counter() - start) * 1000, 2),
            }
        )

    return app


def app_from_path(
    model_path: str | Path,
    threads: int | None = None,
    threshold: float | None = None,
    **limits: Any,
) -> FastAPI:
    """Load a `.pt` (torch) or `.onnx` (onnxruntime) model once and build the app around it.

    `threshold` overrides the model's calibrated one; an uncalibrated model needs it.
    """
    predictor = Predictor.from_path(model_path, threads=threads, threshold=threshold)
    return create_app(predictor, **limits)
