#!/usr/bin/env bash
# Set up facepad in ./.venv on a fresh machine (Python 3.11). `--dev` adds the test tools and the
# `ray` extra (the Ray Serve and Ray Data tests need it).
# mediapipe 0.10.14 goes in with --no-deps: its declared dependencies pull jax and a second
# OpenCV package that would fight opencv-python-headless over cv2/. Its real needs are pinned in
# pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="all"
if [[ "${1:-}" == "--dev" ]]; then extras="all,dev,ray"; fi
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-compile -e ".[${extras}]"
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-compile --no-deps mediapipe==0.10.14
.venv/bin/python - <<'PY'
import sys

import cv2  # noqa: F401  (one OpenCV, importable)
import mediapipe as mp

mp.solutions.face_detection  # the offline face APIs load
assert "jax" not in sys.modules, "jax must not be imported at run time"
print("facepad environment ready in .venv")
PY
