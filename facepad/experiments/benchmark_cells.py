"""What `facepad benchmark` is made of: its `Settings`, the cells it plans (a `Run` trained on
`View`s of stores, tested on another view) and a model's `Outcome` in a cell.

Shared by the runner (`facepad.experiments.benchmark`, which plans and runs the cells) and the
tables (`facepad.experiments.benchmark_results`, which reads the outcomes); imports neither.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from facepad.experiments.paper_models import MODELS

# One packaged recipe serves every model (its per-model sections give depth and fusion CDC).
DEFAULT_RECIPES = dict.fromkeys(MODELS, "nuaa_cpu")


@dataclass
class Settings:
    """What every cell shares: models and their recipes, overrides, split and report settings."""

    models: Sequence[str] = MODELS
    recipes: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_RECIPES))
    overrides: Sequence[str] = ()
    val_fraction: float = 0.2
    seed: int = 0
    folds: int = 5
    cross_test: str = "all"
    device: str = "auto"
    n_boot: int = 1000
    train_seeds: Sequence[int] = ()  # each cell trained once per seed; empty: the recipe's seed
    late_fusion: bool = False  # also each cell's binary_cnn + depth_unet averaged (LATE_FUSION)


@dataclass
class View:
    """A store seen through a split file: `{store idx: split}` (samples not listed left out)."""

    store: str  # the dataset name given to the benchmark
    key: str  # split file name: OUT/splits/<key>.csv
    splits: dict[int, str]


@dataclass
class Run:
    """One training per model: the views it trains (train split) and validates (val split) on."""

    name: str
    views: list[View]


@dataclass
class Cell:
    """One table cell: a run's models evaluated on the test split of a view."""

    protocol: str
    train: str
    test: str
    run: Run
    test_view: View
    fold: int | None = None

    @property
    def folder(self) -> str:
        name = f"{self.train}__{self.test}"
        return f"{self.protocol}/{name}" + (f"/fold{self.fold}" if self.fold is not None else "")


@dataclass
class Outcome:
    """One model in one cell: its score rows and report."""

    cell: Cell
    model: str
    rows: list[dict]
    report: dict
    seed: int | str | None = None  # the training seed when several run, or ENSEMBLE
