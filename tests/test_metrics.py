"""Metrics against hand-counted cases and against scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facepad import metrics as M

# Hand-counted fixture: 4 live, 6 attacks (3 print, 3 replay), threshold 0.5 (accept >= 0.5).
SCORES = [0.9, 0.8, 0.5, 0.2, 0.7, 0.5, 0.1, 0.3, 0.2, 0.0]
LIVE = [True] * 4 + [False] * 6  # live scores 0.9, 0.8, 0.5, 0.2 -> 0.2 rejected: BPCER 1/4
TYPES = ["live"] * 4 + ["print", "print", "print", "replay", "replay", "replay"]
# print: 0.7 and 0.5 accepted, 0.1 rejected -> 2/3; replay: 0.3, 0.2, 0.0 all rejected -> 0/3.


def test_error_rates_hand_counted():
    r = M.error_rates(SCORES, LIVE, 0.5, TYPES)
    assert r["apcer"] == pytest.approx(2 / 6)  # attacks accepted as live
    assert r["bpcer"] == pytest.approx(1 / 4)  # live rejected as attacks
    assert r["acer"] == pytest.approx((2 / 6 + 1 / 4) / 2)
    assert r["acc"] == pytest.approx(7 / 10)
    assert r["apcer_per_type"] == {"print": pytest.approx(2 / 3), "replay": 0.0}
    assert r["apcer_worst"] == pytest.approx(2 / 3)
    assert (r["n_live"], r["n_attack"], r["n_live_rejected"], r["n_attack_accepted"]) == (
        4,
        6,
        1,
        2,
    )


def test_apcer_bpcer_not_swapped():
    # All attacks accepted, all live accepted: APCER 1, BPCER 0 (a swapped implementation fails).
    r = M.error_rates([0.9, 0.9, 0.9], [True, False, False], 0.5)
    assert r["apcer"] == 1.0 and r["bpcer"] == 0.0


def test_tie_at_threshold_accepts():
    r = M.error_rates([0.5, 0.5], [True, False], 0.5)
    assert r["bpcer"] == 0.0 and r["apcer"] == 1.0
    r = M.error_rates([0.5, 0.5], [True, False], 0.5000001)
    assert r["bpcer"] == 1.0 and r["apcer"] == 0.0


def test_worst_equals_pooled_without_types():
    r = M.error_rates(SCORES, LIVE, 0.5)
    assert r["apcer_worst"] == r["apcer"]


def test_hter_is_acer_at_fixed_threshold():
    assert M.hter(SCORES, LIVE, 0.5) == pytest.approx((2 / 6 + 1 / 4) / 2)


def test_one_class_gives_nan_rates_and_clear_errors():
    r = M.error_rates([0.1, 0.9], [False, False], 0.5)
    assert r["apcer"] == 0.5 and math.isnan(r["bpcer"]) and math.isnan(r["acer"])
    assert r["acc"] == 0.5
    r = M.error_rates([0.1, 0.9], [True, True], 0.5, ["live", "live"])
    assert math.isnan(r["apcer"]) and r["bpcer"] == 0.5 and r["apcer_per_type"] == {}
    assert math.isnan(r["apcer_worst"])
    with pytest.raises(M.OneClassError, match="needs attack samples"):
        M.roc_auc([0.1, 0.9], [True, True])
    with pytest.raises(M.OneClassError, match="needs live samples"):
        M.eer([0.1, 0.9], [False, False])
    s = M.summary([0.1, 0.9], [True, True], 0.5)
    assert math.isnan(s["auc"]) and math.isnan(s["eer"]) and math.isnan(s["tpr@fpr=1e-2"])


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="differ in length"):
        M.error_rates([0.1, 0.2], [True], 0.5)
    with pytest.raises(ValueError, match="empty"):
        M.error_rates([], [], 0.5)
    with pytest.raises(ValueError, match="NaN"):
        M.error_rates([float("nan"), 0.2], [True, False], 0.5)
    with pytest.raises(ValueError, match="booleans"):
        M.error_rates([0.1, 0.2], [2, 0], 0.5)
    with pytest.raises(ValueError, match="unknown threshold rule"):
        M.select_threshold(SCORES, LIVE, "roc")
    with pytest.raises(ValueError, match="needs a target"):
        M.select_threshold(SCORES, LIVE, "apcer")


def test_rate_curve_hand_counted_with_ties():
    # live 0.8, 0.5; attacks 0.5, 0.1. Distinct scores 0.8, 0.5, 0.1.
    t, apcer, bpcer = M.rate_curve([0.8, 0.5, 0.5, 0.1], [True, True, False, False])
    assert t[0] > 0.8 and list(t[1:]) == [0.8, 0.5, 0.1]
    assert list(apcer) == [0.0, 0.0, 0.5, 1.0]
    assert list(bpcer) == [1.0, 0.5, 0.0, 0.0]


def test_auc_hand_counted_with_ties():
    # Pairs (live, attack): (0.8,0.5)=1, (0.8,0.1)=1, (0.5,0.5)=0.5, (0.5,0.1)=1 -> 3.5/4.
    assert M.roc_auc([0.8, 0.5, 0.5, 0.1], [True, True, False, False]) == pytest.approx(0.875)
    assert M.roc_auc([0.9, 0.1], [True, False]) == 1.0
    assert M.roc_auc([0.1, 0.9], [True, False]) == 0.0
    assert M.roc_auc([0.5, 0.5], [True, False]) == 0.5


def test_eer_hand_counted():
    # Separable: EER 0 at the lowest live score.
    e, t = M.eer([0.9, 0.7, 0.3, 0.1], [True, True, False, False])
    assert e == 0.0 and t == 0.7
    # live 0.9, 0.4; attacks 0.6, 0.1. At t=0.6: APCER 1/2, BPCER 1/2 -> EER 0.5 (t=0.9 gives
    # APCER 0, BPCER 1/2: gap 1/2, worse).
    e, t = M.eer([0.9, 0.4, 0.6, 0.1], [True, True, False, False])
    assert e == 0.5 and t == 0.6
    r = M.error_rates([0.9, 0.4, 0.6, 0.1], [True, True, False, False], t)
    assert r["apcer"] == 0.5 and r["bpcer"] == 0.5


def test_threshold_selection_and_operating_points():
    # 10 live at 0.50..0.95, 10 attacks at 0.00..0.45 plus one attack at 0.97.
    live = np.r_[np.ones(10, bool), np.zeros(11, bool)]
    scores = np.r_[np.linspace(0.5, 0.95, 10), np.linspace(0.0, 0.45, 10), 0.97]
    # APCER <= 0 requires rejecting 0.97: threshold just above it -> all live rejected.
    t = M.threshold_at_apcer(scores, live, 0.0)
    assert t > 0.97 and M.error_rates(scores, live, t)["bpcer"] == 1.0
    # APCER <= 1/11 allows accepting 0.97 -> threshold 0.5 (all live accepted).
    t = M.select_threshold(scores, live, "apcer", 1 / 11)
    assert t == pytest.approx(0.5)
    assert M.bpcer_at_apcer(scores, live, 0.05) == 1.0  # BPCER20: 1/11 > 5 %, so reject all
    assert M.bpcer_at_apcer(scores, live, 0.10) == 0.0
    # BPCER <= 0.1: may reject one live face -> threshold 0.55, still accepts the 0.97 attack.
    t = M.select_threshold(scores, live, "bpcer", 0.1)
    assert t == pytest.approx(0.55)
    # TPR@FPR (spoof positive): with FPR <= 0.1, 10 of 11 spoofs are caught.
    assert M.tpr_at_fpr(scores, live, 0.1) == pytest.approx(10 / 11)
    assert M.tpr_at_fpr(scores, live, 0.0) == pytest.approx(10 / 11)


def test_agrees_with_sklearn_on_random_data():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for trial in range(20):
        n = int(rng.integers(5, 300))
        live = rng.random(n) < 0.4
        live[0], live[1] = True, False
        # Rounded scores force many ties.
        scores = np.round(rng.random(n) + 0.3 * live, 1 if trial % 2 else 6)
        assert M.roc_auc(scores, live) == pytest.approx(sk.roc_auc_score(live, scores))
        fpr, tpr, thr = M.roc_curve(scores, live)
        sk_fpr, sk_tpr, sk_thr = sk.roc_curve(live, scores, drop_intermediate=False)
        np.testing.assert_allclose(fpr, sk_fpr)
        np.testing.assert_allclose(tpr, sk_tpr)
        np.testing.assert_allclose(thr[1:], sk_thr[1:])


def test_bootstrap_ci_brackets_point_estimate_and_is_subject_level():
    rng = np.random.default_rng(1)
    subjects = np.repeat([f"s{i}" for i in range(30)], 10)
    live = np.tile(np.r_[np.ones(5, bool), np.zeros(5, bool)], 30)
    scores = np.clip(rng.normal(0.5 + 0.2 * np.where(live, 1, -1), 0.2), 0, 1)
    point = M.error_rates(scores, live, 0.5)
    ci = M.bootstrap_ci(scores, live, 0.5, subjects, n_boot=500, seed=0)
    for key in ("apcer", "bpcer", "acer"):
        lo, hi = ci[key]
        assert lo <= point[key] <= hi and hi - lo > 0
    assert M.bootstrap_ci(scores, live, 0.5, subjects, n_boot=500, seed=0) == ci  # seeded
    # One subject: every resample is that subject, so the interval collapses to the point.
    one = M.bootstrap_ci(scores[:10], live[:10], 0.5, subjects[:10], n_boot=50)
    assert one["acer"] == (pytest.approx(M.hter(scores[:10], live[:10], 0.5)),) * 2
    # No live samples at all: BPCER interval is NaN, APCER still defined.
    only_attacks = M.bootstrap_ci(scores[~live], live[~live], 0.5, subjects[~live], n_boot=50)
    assert math.isnan(only_attacks["bpcer"][0]) and not math.isnan(only_attacks["apcer"][0])


def test_summary_keys():
    s = M.summary(SCORES, LIVE, 0.5, TYPES)
    for key in ("apcer", "bpcer", "acer", "acc", "hter", "auc", "eer", "bpcer100", "bpcer20"):
        assert 0.0 <= s[key] <= 1.0
    assert s["tpr@fpr=1e-3"] <= s["tpr@fpr=1e-2"]


def test_one_validation_threshold_whoever_asks():
    """Training, `facepad ensemble` and `evaluate --rule eer` share one threshold. On a
    validation split that separates the classes (EER 0 over the whole gap 0.3-0.6), it sits
    where both classes are equally many standard deviations away, not at the lowest live score
    (where the first darker live face of a new person would be rejected)."""
    scores = np.array([0.9, 0.7, 0.6, 0.3, 0.2, 0.1])
    live = np.array([True, True, True, False, False, False])
    assert M.eer(scores, live) == (0.0, 0.6)
    sd_a, sd_l = np.std([0.3, 0.2, 0.1]), np.std([0.9, 0.7, 0.6])
    balanced = 0.2 + sd_a * (np.mean([0.9, 0.7, 0.6]) - 0.2) / (sd_a + sd_l)
    assert M.eer_threshold(scores, live) == pytest.approx(balanced) and 0.3 < balanced < 0.6
    assert M.select_threshold(scores, live, "eer") == M.eer_threshold(scores, live)
    # A tight attack cluster far below: kept inside the gap, just above the highest attack.
    tight = np.array([0.9, 0.5, 0.3, 0.1001, 0.1, 0.0999])
    assert 0.1001 < M.eer_threshold(tight, live) < 0.11
    # Overlapping classes: the EER point with the margin, as before.
    t = M.eer_threshold(SCORES, LIVE)
    assert t == M.margin_threshold(np.array(SCORES), M.eer(SCORES, LIVE)[1])


def test_live_threshold_hand_counted():
    live = [0.9, 0.2, 0.6, 0.8, 0.4]  # sorted: 0.2 0.4 0.6 0.8 0.9
    # 20 % of 5 faces: one may be rejected -> the threshold sits between 0.2 and 0.4
    t = M.live_threshold(live, 0.2)
    assert 0.2 < t <= 0.4 and np.mean(np.array(live) < t) == 0.2
    # under one face's share: none rejected, the threshold just under the lowest score
    t0 = M.live_threshold(live, 0.1)
    assert t0 <= 0.2 and np.mean(np.array(live) < t0) == 0.0
    # 40 %: two rejected
    assert np.mean(np.array(live) < M.live_threshold(live, 0.4)) == 0.4


def test_live_threshold_never_exceeds_its_target_with_ties():
    live = [0.5] * 4 + [0.7] * 6
    for target in (0.0, 0.1, 0.3, 0.4, 0.5, 0.9):
        t = M.live_threshold(live, target)
        assert np.mean(np.array(live) < t) <= target + 1e-12
    with pytest.raises(ValueError, match="at least one live score"):
        M.live_threshold([], 0.02)
    with pytest.raises(ValueError, match=r"target BPCER must be in \[0, 1\)"):
        M.live_threshold([0.5], 1.0)
