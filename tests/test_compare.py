"""`facepad compare`: a paired subject bootstrap of two models scored on the same samples."""

import json

import numpy as np
import pytest

from facepad import metrics
from facepad.cli import main
from facepad.evaluate.compare import compare_scores
from facepad.evaluate.report import write_scores_csv


def _rows(scores, is_live, subjects, threshold=0.5):
    return [
        {
            "idx": i,
            "path": f"img/{i}.png",
            "subject": subj,
            "label": "live" if y else "spoof",
            "attack_type": "live" if y else "print",
            "attributes": {"dataset": "toy"},
            "score": float(s),
            "decision": "live" if s >= threshold else "spoof",
        }  # fmt: skip
        for i, (s, y, subj) in enumerate(zip(scores, is_live, subjects, strict=True))
    ]


def _toy(n_subjects=20, per=6, seed=0):
    """Each subject 3 live and 3 spoof; a separates them by chance, b perfectly."""
    rng = np.random.default_rng(seed)
    is_live = np.tile([True] * (per // 2) + [False] * (per // 2), n_subjects)
    subjects = np.repeat([f"s{k:02d}" for k in range(n_subjects)], per)
    chance = rng.random(is_live.size)
    perfect = np.where(
        is_live, 0.6 + 0.4 * rng.random(is_live.size), 0.4 * rng.random(is_live.size)
    )
    return is_live, subjects, chance, perfect


def test_a_model_against_itself_differs_by_exactly_nothing():
    is_live, subjects, chance, _ = _toy()
    same = (chance, chance >= 0.5)
    out = metrics.paired_bootstrap(is_live, subjects, same, same, n_boot=200)
    for name in ("auc", "hter"):
        assert out[name]["diff"] == out[name]["low"] == out[name]["high"] == 0.0
        assert out[name]["p_b_better"] == 0.0


def test_a_perfect_model_beats_a_chance_one_beyond_the_interval():
    is_live, subjects, chance, perfect = _toy()
    out = metrics.paired_bootstrap(
        is_live, subjects, (chance, chance >= 0.5), (perfect, perfect >= 0.5), n_boot=300
    )
    assert out["auc"]["b"] == 1.0 and out["hter"]["b"] == 0.0
    assert out["auc"]["low"] > 0.2 and out["auc"]["p_b_better"] == 1.0
    assert out["hter"]["high"] < -0.2 and out["hter"]["p_b_better"] == 1.0


def test_few_subjects_give_an_interval_that_includes_zero():
    """Two subjects cannot show a small improvement: the interval must say so."""
    is_live, subjects, chance, _ = _toy(n_subjects=3)
    nudged = chance + np.where(is_live, 0.05, -0.05)
    out = metrics.paired_bootstrap(
        is_live, subjects, (chance, chance >= 0.5), (nudged, nudged >= 0.5), n_boot=300
    )
    assert out["auc"]["diff"] > 0
    assert out["auc"]["low"] <= 0 < out["auc"]["high"]


def test_score_files_pair_by_sample_not_by_row_order(tmp_path):
    is_live, subjects, chance, perfect = _toy()
    a = write_scores_csv(_rows(chance, is_live, subjects), tmp_path / "a.csv")
    b_rows = _rows(perfect, is_live, subjects)
    b = write_scores_csv(b_rows, tmp_path / "b.csv")
    shuffled = write_scores_csv(b_rows[::-1], tmp_path / "b_reversed.csv")
    assert compare_scores(a, b, n_boot=100) == {
        **compare_scores(a, shuffled, n_boot=100),
        "b": str(b),
    }
    assert compare_scores(a, b, n_boot=100)["auc"]["b"] == 1.0


def test_files_of_different_samples_are_refused_naming_both(tmp_path):
    is_live, subjects, chance, _ = _toy()
    rows = _rows(chance, is_live, subjects)
    a = write_scores_csv(rows, tmp_path / "a.csv")
    b = write_scores_csv(rows[:-1], tmp_path / "b.csv")
    with pytest.raises(ValueError, match=r"a\.csv and .*b\.csv score different samples"):
        compare_scores(a, b)
    relabelled = [dict(r) for r in rows]
    relabelled[3]["label"] = "spoof" if rows[3]["label"] == "live" else "live"
    c = write_scores_csv(relabelled, tmp_path / "c.csv")
    with pytest.raises(ValueError, match=r"label 1 sample\(s\) differently, e.g. img/3.png"):
        compare_scores(a, c)


def test_compare_command_prints_the_table_and_writes_json(tmp_path, capsys):
    is_live, subjects, chance, perfect = _toy()
    a = write_scores_csv(_rows(chance, is_live, subjects), tmp_path / "a.csv")
    b = write_scores_csv(_rows(perfect, is_live, subjects), tmp_path / "b.csv")
    out_json = tmp_path / "reports" / "cmp.json"  # a folder that does not exist yet
    assert main(["compare", str(a), str(b), "--n-boot", "100", "--json", str(out_json)]) == 0
    printed = capsys.readouterr().out
    assert "| AUC |" in printed and "b better" in printed
    assert json.loads(out_json.read_text())["n_subjects"] == 20
    assert main(["compare", str(a), str(tmp_path / "missing.csv")]) == 2


def test_equal_hters_reached_by_different_errors_differ_by_exactly_nothing():
    """a: 1 of 10 attacks accepted, 2 of 10 lives rejected; b: 3 attacks accepted, no live
    rejected. Both HTERs are 15 %, but 0.1 + 0.2 != 0.3 in floating point: that 3e-17 must not
    read as b being better."""
    is_live = np.tile([True] * 10 + [False] * 10, 4)
    subjects = np.repeat(["s1", "s2", "s3", "s4"], 20)
    one_subject_a = [False, False] + [True] * 8 + [True] + [False] * 9
    one_subject_b = [True] * 10 + [True] * 3 + [False] * 7
    scores = np.linspace(0, 1, is_live.size)
    out = metrics.paired_bootstrap(
        is_live,
        subjects,
        (scores, np.tile(one_subject_a, 4)),
        (scores, np.tile(one_subject_b, 4)),
        n_boot=50,
    )
    assert out["hter"]["a"] == pytest.approx(out["hter"]["b"])
    assert out["hter"]["low"] == out["hter"]["high"] == 0.0
    assert out["hter"]["p_b_better"] == 0.0
