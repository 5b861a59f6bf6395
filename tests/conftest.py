"""Shared test fixtures. Each part's own fixtures live in its test file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
NUAA_DEV = Path(
    os.environ.get("FACEPAD_NUAA_DEV", REPO_ROOT.parent / "shared" / "data" / "nuaa-dev")
)


@pytest.fixture(scope="session")
def nuaa_dev() -> Path:
    """The real nuaa-dev set beside the checkout; tests that need it skip where it is absent."""
    if not (NUAA_DEV / "manifest.csv").is_file():
        pytest.skip(f"nuaa-dev not found at {NUAA_DEV} (set FACEPAD_NUAA_DEV)")
    return NUAA_DEV
