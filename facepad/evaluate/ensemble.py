"""Build one calibrated checkpoint from several trained ones (`facepad ensemble`).

The ensemble's score is not any member's, so it gets its own threshold: the validation EER on the
split given (`metrics.eer_threshold`), exactly as `facepad train` calibrates a checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facepad import metrics
from facepad.evaluate.evaluate import score_dataset

if TYPE_CHECKING:
    from facepad.models.ensemble import Ensemble


def build_ensemble(
    checkpoints: Sequence[str | Path],
    store,
    out: str | Path,
    split: str = "val",
    batch_size: int = 64,
    device: str = "cpu",
) -> dict:
    """Average `checkpoints` into one model, threshold it on `store`'s `split`, save it to `out`.

    `store` is a store folder or an open `PreparedStore` (a `MultiStore`, perhaps with a split
    file). Returns the saved checkpoint dict; its `val` holds the split's AUC, EER and rates.
    """
    from facepad.data.dataset import StoreDataset
    from facepad.data.store import PreparedStore
    from facepad.models.checkpoint import build_checkpoint, save_checkpoint
    from facepad.models.score import ScoredModel

    model, preprocess = ensemble_of(checkpoints)
    prepared = store if isinstance(store, PreparedStore) else PreparedStore(store)
    if split not in prepared.splits():
        raise ValueError(
            f"{prepared.root} has no {split!r} split to calibrate the ensemble on (it has "
            f"{', '.join(prepared.splits())}); pass the store the members were validated on"
        )
    depth_size = preprocess["depth_size"] or prepared.depth_size
    dataset = StoreDataset(prepared, split, preprocess["input_size"], depth_size, augment=False)
    idx, scores = score_dataset(
        ScoredModel(model), dataset, batch_size, device, desc=f"ensemble {split}"
    )
    is_live = np.array([prepared.index[i]["label"] == "live" for i in idx.tolist()])
    if is_live.all() or not is_live.any():
        raise ValueError(
            f"{prepared.root}: its {split!r} split holds one class, so no threshold can be "
            "calibrated; pass a split with live and spoof samples"
        )
    threshold = metrics.eer_threshold(scores, is_live)
    rates = metrics.summary(scores, is_live, threshold)
    val = {"split": split, "store": str(prepared.root), "n": int(len(scores))}
    val |= {k: float(rates[k]) for k in ("apcer", "bpcer", "hter", "auc", "eer")}
    ckpt = build_checkpoint(
        model.cpu(),
        config={"ensemble_of": [str(c) for c in checkpoints]},
        preprocess={k: v for k, v in preprocess.items() if v is not None},
        threshold=threshold,
        epoch=0,
        step=0,
        best_metric={},
        val=val,
    )
    save_checkpoint(ckpt, out)
    return ckpt


def ensemble_of(checkpoints: Sequence[str | Path]) -> tuple[Ensemble, dict]:
    """(Ensemble holding the checkpoints' weights, their shared preprocess).

    Members must crop and size faces alike: one face crop feeds them all.
    """
    from facepad.models.checkpoint import checkpoint_preprocess, model_from_checkpoint
    from facepad.models.registry import create_model

    loaded = [model_from_checkpoint(c) for c in checkpoints]
    preprocess = [
        checkpoint_preprocess(ckpt, str(path))
        for path, (_, ckpt) in zip(checkpoints, loaded, strict=True)
    ]
    for path, pre in zip(checkpoints[1:], preprocess[1:], strict=True):
        if pre != preprocess[0]:
            raise ValueError(
                f"{path} crops faces as {pre}, {checkpoints[0]} as {preprocess[0]}: ensemble "
                "models trained on the same prepared store and input size"
            )
    ensemble = create_model("ensemble", members=[ckpt["model"] for _, ckpt in loaded])
    for slot, (model, _) in zip(ensemble.members, loaded, strict=True):
        slot.load_state_dict(model.state_dict())
    return ensemble.eval(), preprocess[0]
