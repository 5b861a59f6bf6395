"""The paper's three models, in Table I's order, as the experiments name them.

A plain tuple rather than the model registry: the registry also holds the ensemble, which is
built from these models rather than compared with them, and importing it loads torch, which
`facepad.experiments.reproduce` otherwise loads only when it trains or evaluates.
"""

from __future__ import annotations

from collections.abc import Sequence

MODELS = ("binary_cnn", "depth_unet", "fusion")


def check_models(models: Sequence[str]) -> None:
    """Refuse an empty choice or a name outside MODELS, naming the ones there are."""
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise ValueError(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
