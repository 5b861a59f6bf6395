"""PAD metrics as pure numpy functions (ISO/IEC 30107-3 naming).

Conventions used everywhere in this module:

- `scores`: higher = more likely live (bona fide). `is_live`: True for bona fide presentations.
- Decision: a presentation is accepted as live when `score >= threshold` (ties accept).
- APCER = share of attack presentations accepted as live; BPCER = share of bona fide
  presentations rejected. (Much public code swaps the two; the tests pin them with hand counts.)
- All rates are fractions in [0, 1], never percent.

One-class rule: a rate over an empty class is NaN (e.g. BPCER when there is no live sample), never a
crash or a warning. Quantities that need both classes to exist at all (ROC, AUC, EER, threshold
selection, BPCER@APCER, TPR@FPR) raise `OneClassError` (a ValueError) saying which class is missing;
`summary` turns those into NaN so a report over a one-class subset still renders.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ArrayLike = Sequence | np.ndarray


class OneClassError(ValueError):
    """A metric that needs live and attack samples was given only one class."""


def _as_arrays(scores: ArrayLike, is_live: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert inputs: 1-D finite float scores and a bool mask of the same length."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    raw = np.asarray(is_live).reshape(-1)
    if raw.dtype != bool:
        if not np.all(np.isin(raw, (0, 1))):
            raise ValueError("is_live must hold booleans (or 0/1); got other values")
        raw = raw.astype(bool)
    if s.shape != raw.shape:
        raise ValueError(f"scores ({s.size}) and is_live ({raw.size}) differ in length")
    if s.size == 0:
        raise ValueError("no samples: scores is empty")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"{int(np.sum(~np.isfinite(s)))} scores are NaN or infinite")
    return s, raw


def _rate(numerator: int, denominator: int) -> float:
    """numerator / denominator, NaN for an empty denominator (the one-class rule)."""
    return float(numerator) / denominator if denominator else float("nan")


def _need_both(is_live: np.ndarray, what: str) -> None:
    if not is_live.any():
        raise OneClassError(f"{what} needs live samples; all {is_live.size} are attacks")
    if is_live.all():
        raise OneClassError(f"{what} needs attack samples; all {is_live.size} are live")


def error_rates(
    scores: ArrayLike,
    is_live: ArrayLike,
    threshold: float,
    attack_types: ArrayLike | None = None,
) -> dict:
    """APCER, BPCER, ACER and ACC at one threshold (decision live when score >= threshold).

    `apcer` pools all attacks (what most papers report). `apcer_per_type` gives APCER per PAI
    species from `attack_types` (entries of live samples are ignored) and `apcer_worst` is ISO's
    max over species; without `attack_types` all attacks are one species, so worst == pooled.
    Also returns the counts behind the rates (`n_live`, `n_attack`, `n_live_rejected`,
    `n_attack_accepted`) and the `threshold`.
    """
    s, live = _as_arrays(scores, is_live)
    accepted = s >= threshold
    attack = ~live
    n_live, n_attack = int(live.sum()), int(attack.sum())
    n_live_rejected = int((live & ~accepted).sum())
    n_attack_accepted = int((attack & accepted).sum())
    apcer = _rate(n_attack_accepted, n_attack)
    bpcer = _rate(n_live_rejected, n_live)

    per_type: dict[str, float] = {}
    if attack_types is not None:
        types = np.asarray(attack_types, dtype=object).reshape(-1)
        if types.size != s.size:
            raise ValueError(f"attack_types ({types.size}) and scores ({s.size}) differ in length")
        for name in sorted({str(t) for t in types[attack]}):
            mask = attack & (types.astype(str) == name)
            per_type[name] = _rate(int((mask & accepted).sum()), int(mask.sum()))
    elif n_attack:
        per_type["attack"] = apcer
    worst = max(per_type.values()) if per_type else float("nan")

    return {
        "apcer": apcer,
        "bpcer": bpcer,
        "acer": (apcer + bpcer) / 2.0,  # NaN if either is NaN
        "acc": float((accepted == live).mean()),
        "apcer_per_type": per_type,
        "apcer_worst": worst,
        "threshold": float(threshold),
        "n_live": n_live,
        "n_attack": n_attack,
        "n_live_rejected": n_live_rejected,
        "n_attack_accepted": n_attack_accepted,
    }


def hter(scores: ArrayLike, is_live: ArrayLike, threshold: float) -> float:
    """Half total error rate at a threshold fixed beforehand (on dev): (APCER + BPCER) / 2."""
    return error_rates(scores, is_live, threshold)["acer"]


def rate_curve(scores: ArrayLike, is_live: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """APCER and BPCER at every threshold that changes a decision.

    Returns (thresholds, apcer, bpcer), thresholds descending: first just above the top score
    (everything rejected: APCER 0, BPCER 1), then every distinct score (accept score >= t), the last
    one accepting everything (APCER 1, BPCER 0). Tied scores move together, as in sklearn.
    """
    s, live = _as_arrays(scores, is_live)
    _need_both(live, "a rate curve")
    order = np.argsort(-s, kind="mergesort")
    s_sorted, live_sorted = s[order], live[order]
    # Last index of each run of equal scores: the decision changes only there.
    last = np.r_[np.nonzero(np.diff(s_sorted))[0], s.size - 1]
    live_accepted = np.cumsum(live_sorted)[last]
    attack_accepted = np.cumsum(~live_sorted)[last]
    n_live, n_attack = int(live.sum()), int((~live).sum())
    top = np.nextafter(s_sorted[0], np.inf)
    thresholds = np.r_[top, s_sorted[last]]
    apcer = np.r_[0.0, attack_accepted / n_attack]
    bpcer = np.r_[1.0, 1.0 - live_accepted / n_live]
    return thresholds, apcer, bpcer


def roc_curve(scores: ArrayLike, is_live: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC with live as the positive class: (fpr = APCER, tpr = 1 - BPCER, thresholds).

    Matches sklearn's `roc_curve(is_live, scores, drop_intermediate=False)` point for point, except
    that the first threshold is just above the top score instead of +inf.
    """
    thresholds, apcer, bpcer = rate_curve(scores, is_live)
    return apcer, 1.0 - bpcer, thresholds


def roc_auc(scores: ArrayLike, is_live: ArrayLike) -> float:
    """Area under the ROC (live positive); ties count one half, as sklearn's roc_auc_score."""
    fpr, tpr, _ = roc_curve(scores, is_live)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def eer(scores: ArrayLike, is_live: ArrayLike) -> tuple[float, float]:
    """Equal error rate and its threshold, as (eer, threshold).

    Rule: among the thresholds of `rate_curve`, take the one where |APCER - BPCER| is smallest
    (ties: the lower mean, then the higher threshold); EER is the mean of APCER and BPCER there.
    The threshold is an actual decision point (accept score >= threshold), so it can be applied
    unchanged to a test set.
    """
    thresholds, apcer, bpcer = rate_curve(scores, is_live)
    gap = np.abs(apcer - bpcer)
    mean = (apcer + bpcer) / 2.0
    # lexsort: last key is primary. Prefer small gap, then small mean, then high threshold.
    best = np.lexsort((-thresholds, mean, gap))[0]
    return float(mean[best]), float(thresholds[best])


def margin_threshold(scores: np.ndarray, threshold: float) -> float:
    """Midway between the EER threshold (a sample's own score) and the next lower score.

    Val decisions stay the same, but a sample sitting exactly on the threshold no longer flips
    when it is re-scored with different batching or memory layout (1e-7 differences).
    """
    below = scores[scores < threshold]
    return float((threshold + below.max()) / 2) if below.size else float(threshold)


def eer_threshold(scores: ArrayLike, is_live: ArrayLike) -> float:
    """The validation EER threshold every part of facepad applies. Training calibrates
    checkpoints with it, `facepad ensemble` and `evaluate --rule eer` too, so one validation
    split gives one threshold whoever asks.

    Usually `eer`'s point, then `margin_threshold`. A validation split that separates the classes
    completely has EER 0 anywhere in the gap between its highest attack and lowest live score;
    there the threshold sits where the two classes are equally many of their own standard
    deviations away (mean_attack + sd_attack * (mean_live - mean_attack) / (sd_attack + sd_live)),
    kept inside the gap: set by both classes' spread, not by the two extreme samples.
    """
    s, live = _as_arrays(scores, is_live)
    _need_both(live, "a validation threshold")
    attack, bona_fide = s[~live], s[live]
    low, high = attack.max(), bona_fide.min()
    spread = attack.std() + bona_fide.std()
    if low >= high or spread <= 0:  # the classes overlap: the EER point is (nearly) unique
        return margin_threshold(s, eer(s, live)[1])
    balanced = attack.mean() + attack.std() * (bona_fide.mean() - attack.mean()) / spread
    return float(np.clip(balanced, low + 0.01 * (high - low), high))


def threshold_at_apcer(scores: ArrayLike, is_live: ArrayLike, target: float) -> float:
    """Lowest threshold with APCER <= target: the least BPCER that keeps attacks under target."""
    thresholds, apcer, _ = rate_curve(scores, is_live)
    ok = np.nonzero(apcer <= target + 1e-12)[0]  # apcer rises as the threshold falls
    return float(thresholds[ok[-1]])


def threshold_at_bpcer(scores: ArrayLike, is_live: ArrayLike, target: float) -> float:
    """Highest threshold with BPCER <= target: the least APCER that keeps live rejects in target."""
    thresholds, _, bpcer = rate_curve(scores, is_live)
    ok = np.nonzero(bpcer <= target + 1e-12)[0]  # bpcer falls as the threshold falls
    return float(thresholds[ok[0]])


def live_threshold(live_scores: ArrayLike, target_bpcer: float) -> float:
    """The highest threshold that rejects at most `target_bpcer` of these bona fide scores, from
    live presentations alone (no attacks needed): the (k+1)-th lowest score for k = floor(target
    x n), moved halfway to the next lower score (`margin_threshold`). With n scores BPCER moves
    in steps of 1 / n, so a 2 % target needs about 50 scores before it can reject any."""
    s = np.sort(np.asarray(live_scores, dtype=np.float64).reshape(-1))
    if s.size == 0:
        raise ValueError("live_threshold needs at least one live score")
    if not 0.0 <= target_bpcer < 1.0:
        raise ValueError(f"target BPCER must be in [0, 1), got {target_bpcer}")
    k = int(np.floor(target_bpcer * s.size + 1e-9))  # live scores allowed below the threshold
    return margin_threshold(s, float(s[k]))


def select_threshold(
    scores: ArrayLike, is_live: ArrayLike, rule: str = "eer", target: float | None = None
) -> float:
    """Pick a decision threshold on validation scores, to apply unchanged to test.

    rule "eer": the validation EER threshold training uses (`eer_threshold`); "apcer": the
    lowest threshold with APCER <= target;
    "bpcer": the highest threshold with BPCER <= target.
    """
    if rule not in ("eer", "apcer", "bpcer"):
        raise ValueError(f"unknown threshold rule {rule!r}; use 'eer', 'apcer' or 'bpcer'")
    if rule == "eer":
        return eer_threshold(scores, is_live)
    if target is None or not 0.0 <= target <= 1.0:
        raise ValueError(f"rule {rule!r} needs a target rate in [0, 1], got {target!r}")
    if rule == "apcer":
        return threshold_at_apcer(scores, is_live, target)
    return threshold_at_bpcer(scores, is_live, target)


def bpcer_at_apcer(scores: ArrayLike, is_live: ArrayLike, apcer_target: float) -> float:
    """BPCER at the operating point where APCER <= target (BPCER100: 0.01, BPCER20: 0.05)."""
    t = threshold_at_apcer(scores, is_live, apcer_target)
    return error_rates(scores, is_live, t)["bpcer"]


def tpr_at_fpr(scores: ArrayLike, is_live: ArrayLike, fpr: float) -> float:
    """CelebA-Spoof challenge metric: spoof is the positive class.

    TPR = share of spoofs caught (1 - APCER), FPR = share of live faces rejected (BPCER).
    Returns the best TPR whose FPR does not exceed `fpr` (a step curve, no interpolation).
    """
    t = threshold_at_bpcer(scores, is_live, fpr)
    return 1.0 - error_rates(scores, is_live, t)["apcer"]


def bootstrap_ci(
    scores: ArrayLike,
    is_live: ArrayLike,
    threshold: float,
    subjects: ArrayLike,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Subject-level bootstrap confidence intervals for APCER, BPCER and ACER at a fixed threshold.

    Samples of one subject are correlated, so subjects (not images) are resampled with replacement.
    Returns {metric: (low, high)}, the (alpha/2, 1 - alpha/2) percentiles; resamples in which a
    class is absent are left out of that metric (all absent -> NaN).
    """
    s, live = _as_arrays(scores, is_live)
    subj = np.asarray(subjects).astype(str).reshape(-1)
    if subj.size != s.size:
        raise ValueError(f"subjects ({subj.size}) and scores ({s.size}) differ in length")
    accepted = s >= threshold
    names, inverse = np.unique(subj, return_inverse=True)
    # Per-subject counts, (n_subjects,) each.
    n_live = np.bincount(inverse, weights=live, minlength=names.size)
    n_attack = np.bincount(inverse, weights=~live, minlength=names.size)
    live_rej = np.bincount(inverse, weights=live & ~accepted, minlength=names.size)
    attack_acc = np.bincount(inverse, weights=~live & accepted, minlength=names.size)

    rng = np.random.default_rng(seed)
    draws = rng.integers(0, names.size, size=(n_boot, names.size))
    weights = np.zeros((n_boot, names.size))
    np.add.at(weights, (np.arange(n_boot)[:, None], draws), 1.0)  # (n_boot, n_subjects)
    with np.errstate(invalid="ignore", divide="ignore"):
        apcer = (weights @ attack_acc) / (weights @ n_attack)
        bpcer = (weights @ live_rej) / (weights @ n_live)
    out = {}
    for name, values in (("apcer", apcer), ("bpcer", bpcer), ("acer", (apcer + bpcer) / 2)):
        values = values[np.isfinite(values)]
        if values.size == 0:
            out[name] = (float("nan"), float("nan"))
        else:
            lo, hi = np.percentile(values, [100 * alpha / 2, 100 * (1 - alpha / 2)])
            out[name] = (float(lo), float(hi))
    return out


def paired_bootstrap(
    is_live: ArrayLike,
    subjects: ArrayLike,
    a: tuple[ArrayLike, ArrayLike],
    b: tuple[ArrayLike, ArrayLike],
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Is model b better than model a on the same samples, beyond what the subjects drawn allow?

    `a` and `b` are (scores, accepted) of two models on the same samples, accepted being each
    model's own decisions. Subjects are resampled with replacement and both models are scored on
    each resample, so the noise common to both cancels. Returns, for "auc" and "hter", the values
    of a and b, the difference b - a, its (alpha/2, 1 - alpha/2) percentile interval and
    `p_b_better`, the share of resamples in which b is better (higher AUC, lower HTER).
    """
    live = np.asarray(is_live, dtype=bool).reshape(-1)
    scores = [np.asarray(m[0], dtype=np.float64).reshape(-1) for m in (a, b)]
    accepted = [np.asarray(m[1], dtype=bool).reshape(-1) for m in (a, b)]
    subj = np.asarray(subjects).astype(str).reshape(-1)
    if any(x.size != live.size for x in (*scores, *accepted, subj)):
        raise ValueError("paired_bootstrap: every array must hold one entry per sample")
    _need_both(live, "paired_bootstrap")
    names, inverse = np.unique(subj, return_inverse=True)
    members = [np.flatnonzero(inverse == k) for k in range(names.size)]

    def both(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y = live[idx]
        auc = [roc_auc(s[idx], y) for s in scores]
        hter_ = [(np.mean(acc[idx][~y]) + np.mean(~acc[idx][y])) / 2 for acc in accepted]
        return np.array(auc), np.array(hter_)

    full_auc, full_hter = both(np.arange(live.size))
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        idx = np.concatenate([members[k] for k in rng.integers(0, names.size, names.size)])
        if live[idx].all() or not live[idx].any():
            continue
        auc, hter_ = both(idx)
        diffs.append((auc[1] - auc[0], hter_[1] - hter_[0]))
    if not diffs:
        raise ValueError("paired_bootstrap: no resample held both classes; too few subjects")
    d = np.round(np.array(diffs), 12)  # float noise (1e-16) must not read as a difference
    lows, highs = np.percentile(d, [100 * alpha / 2, 100 * (1 - alpha / 2)], axis=0)
    better = (d[:, 0] > 0, d[:, 1] < 0)  # higher AUC, lower HTER
    out = {}
    for k, (name, full) in enumerate((("auc", full_auc), ("hter", full_hter))):
        out[name] = {
            "a": float(full[0]),
            "b": float(full[1]),
            "diff": float(full[1] - full[0]),
            "low": float(lows[k]),
            "high": float(highs[k]),
            "p_b_better": float(np.mean(better[k])),
        }
    return out


def _or_nan(fn, *args) -> float:
    try:
        return float(fn(*args))
    except OneClassError:
        return float("nan")


def summary(
    scores: ArrayLike,
    is_live: ArrayLike,
    threshold: float,
    attack_types: ArrayLike | None = None,
) -> dict:
    """Everything a report shows, at one fixed threshold; one-class curve metrics become NaN.

    Keys: those of `error_rates`, plus `hter` (= acer at this fixed threshold), `auc`, `eer`
    (the set's own EER, not at `threshold`), `bpcer100`, `bpcer20` (BPCER at APCER = 1 %, 5 %) and
    `tpr@fpr=1e-2`, `tpr@fpr=5e-3`, `tpr@fpr=1e-3` (spoof positive).
    """
    out = error_rates(scores, is_live, threshold, attack_types)
    out["hter"] = out["acer"]
    out["auc"] = _or_nan(roc_auc, scores, is_live)
    out["eer"] = _or_nan(lambda s, y: eer(s, y)[0], scores, is_live)
    out["bpcer100"] = _or_nan(bpcer_at_apcer, scores, is_live, 0.01)
    out["bpcer20"] = _or_nan(bpcer_at_apcer, scores, is_live, 0.05)
    for fpr in ("1e-2", "5e-3", "1e-3"):
        out[f"tpr@fpr={fpr}"] = _or_nan(tpr_at_fpr, scores, is_live, float(fpr))
    return out
