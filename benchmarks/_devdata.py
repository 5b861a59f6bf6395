"""Where the benchmark scripts find the development datasets (nuaa-dev/, replay-attack-dev/,
celeba-spoof-sample/): $FACEPAD_DATA, else data/ in the checkout. The tests use the same rule."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEV_DATA = Path(os.environ.get("FACEPAD_DATA", REPO / "data"))
