"""Shared test fixtures. Each part's own fixtures live in its test file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
# The development datasets (nuaa-dev/, celeba-spoof-sample/, ...): data/ in the checkout, or
# $FACEPAD_DATA. Tests that need them skip where they are absent.
DEV_DATA = Path(os.environ.get("FACEPAD_DATA", REPO_ROOT / "data"))
NUAA_DEV = DEV_DATA / "nuaa-dev"


@pytest.fixture(scope="session")
def nuaa_dev() -> Path:
    """The real nuaa-dev set; tests that need it skip where it is absent."""
    if not (NUAA_DEV / "manifest.csv").is_file():
        pytest.skip(f"nuaa-dev not found at {NUAA_DEV} (set FACEPAD_DATA)")
    return NUAA_DEV
