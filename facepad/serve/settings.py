"""Service settings: one dataclass that the CLI fills and every worker process rebuilds.

With `--workers N` (uvicorn) or Ray Serve replicas, each process builds its own app from these
settings, passed as JSON in the environment (`FACEPAD_SERVE_SETTINGS`). API keys never travel in
it: each process reads them from `api_key_file` and `FACEPAD_API_KEYS` itself.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

SETTINGS_ENV = "FACEPAD_SERVE_SETTINGS"
API_KEYS_ENV = "FACEPAD_API_KEYS"
RESPONSE_MODES = ("decision", "score", "full")


class SettingsError(ValueError):
    """A setting that cannot be used; the message names it and says how to fix it."""


@dataclass
class ServeSettings:
    """What `facepad serve` was asked for; defaults are the safe ones."""

    model: str = ""
    threads: int | None = None
    threshold: float | None = None  # overrides the model's calibrated threshold
    max_upload_bytes: int = 15 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_inflight: int = 4  # predictions running at once in one process
    max_queue: int = 16  # predictions admitted and waiting; beyond: 503 + Retry-After
    retry_after_s: int = 1
    response: str = "decision"  # decision | score | full
    faces: str = "largest"  # largest | all: which faces get a decision (FaceChoice)
    min_detector_score: float = 0.75
    min_face_fraction: float = 0.1
    api_key_file: str | None = None
    docs: bool = False
    cors_origins: list[str] = field(default_factory=list)
    access_log: str = "-"  # "-" stderr, "off", or a file path (JSON lines, appended)
    trust_request_id: bool = False  # keep an upstream proxy's X-Request-ID (Ray Serve sets it)

    def check(self) -> ServeSettings:
        """Raise SettingsError for a value that cannot work."""
        if self.response not in RESPONSE_MODES:
            raise SettingsError(f"--response {self.response!r}: use one of {RESPONSE_MODES}")
        if self.faces not in ("largest", "all"):
            raise SettingsError(f"--faces {self.faces!r}: use 'largest' or 'all'")
        if self.max_inflight < 1 or self.max_queue < 0:
            raise SettingsError("--max-inflight must be at least 1 and --max-queue at least 0")
        if self.max_upload_bytes < 1 or self.max_pixels < 1:
            raise SettingsError("--max-upload-mb and --max-megapixels must be positive")
        if self.api_key_file is not None and not Path(self.api_key_file).is_file():
            raise SettingsError(f"--api-key-file {self.api_key_file} not found")
        return self

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServeSettings:
        text = (environ if environ is not None else os.environ).get(SETTINGS_ENV)
        if not text:
            raise SettingsError(f"{SETTINGS_ENV} is not set; start the service with facepad serve")
        return cls(**json.loads(text)).check()


def load_api_keys(key_file: str | Path | None, environ: dict[str, str] | None = None) -> list[str]:
    """Keys from a file (one a line, '#' comments) and from FACEPAD_API_KEYS (comma-separated)."""
    keys = []
    if key_file is not None:
        for line in Path(key_file).read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                keys.append(line)
        if not keys:
            raise SettingsError(f"--api-key-file {key_file} holds no key (one key a line)")
    env = (environ if environ is not None else os.environ).get(API_KEYS_ENV, "")
    keys += [k.strip() for k in env.split(",") if k.strip()]
    short = [k for k in keys if len(k) < 16]
    if short:
        raise SettingsError(f"{len(short)} API key(s) shorter than 16 characters; use long keys")
    return keys


def key_digests(keys: list[str]) -> list[bytes]:
    """SHA-256 of each key: compared in constant time, and equal in length whatever the key."""
    return [hashlib.sha256(k.encode("utf-8")).digest() for k in keys]
