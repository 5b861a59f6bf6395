"""`facepad benchmark`: protocol splits, orchestration and resume (fake steps), and one real run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from _benchmark_helpers import subject_store, three_stores

from facepad.config import save_config
from facepad.data.multistore import MultiStore
from facepad.data.store import PreparedStore
from facepad.evaluate import report
from facepad.experiments import benchmark as bm
from facepad.experiments import benchmark_results
from facepad.experiments.benchmark import Steps
from facepad.experiments.benchmark_cells import Settings
from facepad.experiments.paper_models import MODELS

SEPARATION = {"binary_cnn": 0.2, "depth_unet": 0.35, "fusion": 0.4, "late_fusion": 0.45}


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, Path]:
    return three_stores(tmp_path_factory.mktemp("stores"))


def opened(stores) -> dict[str, PreparedStore]:
    return {name: PreparedStore(path) for name, path in stores.items()}


def subjects_by_split(store: PreparedStore, splits: dict[int, str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for i, split in splits.items():
        out.setdefault(split, set()).add(store.index[i]["subject"])
    return out


def test_intra_uses_official_splits_or_carves_validation(stores):
    a, b = PreparedStore(stores["A"]), PreparedStore(stores["B"])
    official = subjects_by_split(a, bm.official_splits(a, "A"))
    assert official == {"train": {"a0", "a1", "a2", "a3"}, "val": {"a4"}, "test": {"a5", "a6"}}
    carved = subjects_by_split(b, bm.carved_splits(b, "B", 0.2, seed=0))
    assert carved["test"] == {"b5", "b6", "b7"}  # B's val split is its test set
    assert len(carved["val"]) == 1 and carved["val"] < {f"b{i}" for i in range(5)}
    assert not carved["val"] & carved["train"] and len(carved["train"]) == 4


def test_cross_test_all_or_test_split(stores):
    a, b = PreparedStore(stores["A"]), PreparedStore(stores["B"])
    assert len(bm.test_splits(b, "B", "all")) == len(b)
    assert subjects_by_split(a, bm.test_splits(a, "A", "test")) == {"test": {"a5", "a6"}}
    with pytest.raises(ValueError, match="no test split"):
        bm.test_splits(b, "B", "test")


def test_kfold_tests_every_subject_once_and_keeps_val_apart(stores):
    b = PreparedStore(stores["B"])
    groups = bm.fold_subjects(b, 3, seed=1)
    assert sorted(s for g in groups for s in g) == sorted(f"b{i}" for i in range(8))
    assert sorted(len(g) for g in groups) == [2, 3, 3]
    for fold in range(3):
        parts = subjects_by_split(b, bm.kfold_splits(b, groups, fold, 0.2, seed=1))
        assert parts["test"] == set(groups[fold])
        assert parts["val"] and not parts["val"] & (parts["train"] | parts["test"])
    with pytest.raises(ValueError, match="choose 2 to 8 folds"):
        bm.fold_subjects(b, 9, seed=0)


def test_kfold_never_deals_a_test_split(stores):
    """k-fold chooses recipes; a store's test split stays out of every fold (A: a5, a6)."""
    a = PreparedStore(stores["A"])
    groups = bm.fold_subjects(a, 2, seed=0)
    assert sorted(s for g in groups for s in g) == ["a0", "a1", "a2", "a3", "a4"]
    splits = bm.kfold_splits(a, groups, 0, 0.2, seed=0)
    held = {row["idx"] for row in a.index if row["split"] == "test"}
    assert held and not held & set(splits)
    assert len(splits) == len(a) - len(held)
    with pytest.raises(ValueError, match="5 subjects outside its test split: choose 2 to 5"):
        bm.fold_subjects(a, 6, seed=0)


def test_plan_shares_runs_and_covers_every_pair(stores):
    protocols = bm.parse_protocols("intra,cross,lodo:B,kfold:C", ["A", "B", "C"])
    cells = bm.plan(opened(stores), protocols, Settings(folds=2))
    kinds = [(c.protocol, c.train, c.test) for c in cells]
    assert kinds[:3] == [("intra", "A", "A"), ("intra", "B", "B"), ("intra", "C", "C")]
    pairs = {(t, s) for p, t, s in kinds if p == "cross"}
    assert pairs == {(x, y) for x in "ABC" for y in "ABC" if x != y}
    assert ("lodo", "A+C", "B") in kinds and kinds.count(("kfold2", "C", "C")) == 2
    runs = {c.run.name for c in cells}
    assert runs == {"A", "B", "B-carved", "C", "lodo-B", "C-kfold2-f0", "C-kfold2-f1"}
    intra_a = next(c for c in cells if c.protocol == "intra" and c.train == "A")
    cross_a = next(c for c in cells if c.protocol == "cross" and c.train == "A")
    assert intra_a.run is cross_a.run  # A has a test split: intra and cross share one training
    for text, message in (("holdout", "protocol 'holdout'"), ("intra:Z", "no store named Z")):
        with pytest.raises(ValueError, match=message):
            bm.parse_protocols(text, ["A", "B"])


class FakeSteps:
    """Counts calls; writes what the real steps write, with scores from the labels."""

    def __init__(self):
        self.trained: list = []
        self.evaluated: list = []
        self.ensembled: list = []

    def steps(self) -> Steps:
        return Steps(train=self.train, evaluate=self.evaluate, ensemble=self.ensemble)

    def ensemble(self, checkpoints, views, out) -> Path:
        self.ensembled.append((list(checkpoints), views, out))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(b"fake ensemble")
        return out

    def train(self, config) -> Path:
        self.trained.append(config)
        run = Path(config.out_dir) / config.run_name
        run.mkdir(parents=True, exist_ok=True)
        save_config(config, run / "config.yaml")
        (run / "best.pt").write_bytes(b"fake")
        return run / "best.pt"

    def evaluate(self, checkpoint, views, out_dir, name, settings, figures):
        self.evaluated.append((checkpoint, views, out_dir, figures))
        store = MultiStore(views)
        rng = np.random.default_rng(len(self.evaluated))
        rows = []
        for i in store.indices("test"):
            row = store.index[i]
            live = row["label"] == "live"
            score = 0.5 + SEPARATION[name] * (1 if live else -1) + rng.normal(0, 0.2)
            rows.append({
                "idx": i, "path": row["path"], "subject": row["subject"], "label": row["label"],
                "attack_type": row["attack_type"], "attributes": {"dataset": row["dataset"]},
                "score": float(score), "decision": report.decide(score, 0.5),
            })  # fmt: skip
        rep = report.build_report(rows, 0.5, name=name, n_boot=20)
        report.write_scores_csv(rows, out_dir / "scores.csv")
        report.write_report(rep, out_dir)
        return rows, rep


def recipe(tmp_path) -> str:
    path = tmp_path / "recipe.yaml"
    path.write_text("data:\n  input_size: 32\n  depth_size: 8\ntrain:\n  epochs: 1\n")
    return str(path)


def test_orchestration_resume_and_refusals(stores, tmp_path):
    fake = FakeSteps()
    settings = Settings(recipes=dict.fromkeys(MODELS, recipe(tmp_path)), folds=2, n_boot=20)
    out = tmp_path / "bench"
    files = bm.benchmark(stores, "intra:B,cross:A,lodo:A,kfold:C", out, settings,
                         steps=fake.steps())  # fmt: skip
    # runs: B-carved, B, C, lodo-A, C-kfold2-f0/1 -> 6 runs x 3 models; cells: 1 + 2 + 1 + 2
    assert len(fake.trained) == 18 and len(fake.evaluated) == 18
    config = fake.trained[0]
    assert config.data.store == "" and config.data.stores[0]["name"] == "B"
    assert (out / "splits" / "B.carved.csv").is_file()
    with open(files["csv"], newline="") as f:
        records = list(csv.DictReader(f))
    kinds = {(r["protocol"], r["train"], r["test"], r["fold"]) for r in records}
    assert ("cross", "B", "A", "") in kinds and ("lodo", "B+C", "A", "") in kinds
    assert {("kfold2", "C", "C", f) for f in ("0", "1", "mean", "std", "pooled")} <= kinds
    pooled = json.loads((out / "eval/kfold2/C__C/pooled/depth_unet/report.json").read_text())
    assert pooled["n_samples"] == 16  # 4 subjects x 4 samples, each in one test fold (not c4:
    # the test split stays out of k-fold)
    md = files["md"].read_text()
    assert "binary_cnn HTER | binary_cnn ACER | binary_cnn AUC | depth_unet HTER" in md
    assert "mean ± std" in md and files["heatmap"].is_file()
    assert [f for *_, f in fake.evaluated] == [True, True, True] * 4 + [False] * 6

    again = FakeSteps()
    bm.benchmark(stores, "intra:B,cross:A,lodo:A,kfold:C", out, settings, steps=again.steps())
    assert again.trained == [] and again.evaluated == []  # everything reused

    changed = Settings(**{**vars(settings), "overrides": ["train.lr=0.1"]})
    with pytest.raises(ValueError, match="another config"):
        bm.benchmark(stores, "intra:B", out, changed, steps=FakeSteps().steps())
    other_seed = Settings(**{**vars(settings), "seed": 5})
    with pytest.raises(ValueError, match="other stores or split settings"):
        bm.benchmark(stores, "intra:B", out, other_seed, steps=FakeSteps().steps())
    forced = FakeSteps()
    bm.benchmark(stores, "intra:B", out, other_seed, force=True, steps=forced.steps())
    assert len(forced.trained) == 3


def test_training_seeds_each_cell_and_mean_std_over_seeds(stores, tmp_path):
    fake = FakeSteps()
    settings = Settings(recipes=dict.fromkeys(MODELS, recipe(tmp_path)), folds=2, n_boot=20,
                        models=["depth_unet"], train_seeds=[3, 7])  # fmt: skip
    out = tmp_path / "bench"
    files = bm.benchmark(stores, "intra:B,kfold:C", out, settings, steps=fake.steps())
    # B-carved + 2 folds of C = 3 runs, each trained with seed 3 and 7
    assert sorted(c.train.seed for c in fake.trained) == [3, 3, 3, 7, 7, 7]
    assert (out / "train/B-carved/seed7/depth_unet/best.pt").is_file()
    assert (out / "eval/intra/B__B/seed3/depth_unet/scores.csv").is_file()
    assert (out / "eval/kfold2/C__C/pooled/seed7/depth_unet/report.json").is_file()
    # Each run's two seeds are averaged into one model, calibrated on the run's own views.
    assert len(fake.ensembled) == 3
    members, views, path = fake.ensembled[0]
    assert path == out / "train/B-carved/ensemble/depth_unet.pt"
    assert members == [out / f"train/B-carved/seed{s}/depth_unet/best.pt" for s in (3, 7)]
    assert views[0]["splits"].endswith("B.carved.csv")
    assert (out / "eval/intra/B__B/ensemble/depth_unet/scores.csv").is_file()
    assert (out / "eval/kfold2/C__C/pooled/ensemble/depth_unet/report.json").is_file()
    with open(files["csv"], newline="") as f:
        records = list(csv.DictReader(f))
    intra = {r["seed"]: float(r["hter"]) for r in records if r["protocol"] == "intra"}
    assert set(intra) == {"3", "7", "mean", "std", "ensemble"}
    assert intra["mean"] == pytest.approx((intra["3"] + intra["7"]) / 2, abs=1e-3)
    assert intra["std"] == pytest.approx(abs(intra["3"] - intra["7"]) / np.sqrt(2), abs=1e-3)
    pooled = {r["seed"] for r in records if r["fold"] == "pooled"}
    assert pooled == {"3", "7", "mean", "std", "ensemble"}
    assert not [r for r in records if r["fold"] == "std" and r["seed"] in ("mean", "std")]
    md = files["md"].read_text()
    assert "once per seed (3, 7)" in md
    rows = [line for line in md.splitlines() if line.startswith("| B | B |")]
    assert rows[0].startswith("| B | B | mean ± std (2 seeds) |")
    assert f"{intra['mean']:.2f} ± {intra['std']:.2f}" in rows[0]
    assert rows[1].startswith("| B | B | ensemble (2 seeds) |")
    assert f"| {intra['ensemble']:.2f} |" in rows[1]
    assert "| C | C | mean over folds | mean ± std (2 seeds) |" in md
    assert "| C | C | mean ± std | ensemble (2 seeds) |" in md  # the ensemble's ± is over folds

    again = FakeSteps()
    bm.benchmark(stores, "intra:B,kfold:C", out, settings, steps=again.steps())
    assert again.trained == [] and again.evaluated == [] and again.ensembled == []
    for bad, message in (({"train_seeds": [1, 1]}, "repeat"),
                         ({"overrides": ["train.seed=2"]}, "keep one")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            bm.benchmark(stores, "intra:B", tmp_path / "x", Settings(**{**vars(settings), **bad}),
                         steps=FakeSteps().steps())  # fmt: skip


def test_late_fusion_averages_each_cells_two_arms(stores, tmp_path):
    fake = FakeSteps()
    models = ["binary_cnn", "depth_unet"]
    settings = Settings(recipes=dict.fromkeys(MODELS, recipe(tmp_path)), folds=2, n_boot=20,
                        models=models, late_fusion=True)  # fmt: skip
    out = tmp_path / "bench"
    files = bm.benchmark(stores, "intra:B,kfold:C", out, settings, steps=fake.steps())
    # One late fusion per run (B-carved, C folds 0 and 1), of that run's binary CNN and depth U-Net.
    assert len(fake.ensembled) == 3
    members, views, path = fake.ensembled[0]
    assert members == [out / f"train/B-carved/{m}/best.pt" for m in models]
    assert path == out / "train/B-carved/late_fusion.pt"
    assert views[0]["splits"].endswith("B.carved.csv")
    assert (out / "eval/intra/B__B/late_fusion/scores.csv").is_file()
    assert (out / "eval/kfold2/C__C/pooled/late_fusion/report.json").is_file()
    md = files["md"].read_text()
    assert "depth_unet AUC | late_fusion HTER | late_fusion ACER | late_fusion AUC |" in md
    with open(files["csv"], newline="") as f:
        records = list(csv.DictReader(f))
    assert {r["fold"] for r in records if r["model"] == "late_fusion"} >= {"", "pooled", "mean"}

    seeds = Settings(**{**vars(settings), "train_seeds": [3, 7]})
    fake = FakeSteps()
    bm.benchmark(stores, "intra:B", tmp_path / "seeds", seeds, steps=fake.steps())
    built = {path.relative_to(tmp_path / "seeds"): members for members, _, path in fake.ensembled}
    run = Path("train/B-carved")
    # per seed: that seed's two arms; ensemble: every seed's two arms
    assert built[run / "seed3/late_fusion.pt"] == [
        tmp_path / "seeds" / run / f"seed3/{m}/best.pt" for m in models
    ]
    assert len(built[run / "ensemble/late_fusion.pt"]) == 4
    assert run / "ensemble/binary_cnn.pt" in built  # the seeds' own ensembles as before

    with pytest.raises(ValueError, match="benchmark both"):
        bm.benchmark(stores, "intra:B", tmp_path / "x",
                     Settings(**{**vars(settings), "models": ["depth_unet", "fusion"]}),
                     steps=FakeSteps().steps())  # fmt: skip


def test_cli_parses_stores_and_recipes(stores, tmp_path, monkeypatch):
    from facepad.cli import main
    from facepad.experiments import commands

    seen = {}
    monkeypatch.setattr(bm, "benchmark", lambda *a, **k: seen.update(args=a) or {})
    rc = main(["benchmark", "--store", f"A={stores['A']}", "--store", str(stores["B"]),
               "--out", str(tmp_path / "o"), "--recipe", "nuaa_cpu", "--recipe",
               "fusion=demo_cpu", "--models", "binary_cnn,fusion", "train.epochs=2"])  # fmt: skip
    assert rc == 0
    named, protocols, out, settings, force = seen["args"]
    assert named == {"A": str(stores["A"]), "B": str(stores["B"])}
    assert settings.recipes["binary_cnn"] == "nuaa_cpu" and settings.recipes["fusion"] == "demo_cpu"
    assert settings.models == ["binary_cnn", "fusion"] and settings.overrides == ["train.epochs=2"]
    assert settings.train_seeds == ()
    main(["benchmark", "--store", str(stores["B"]), "--out", str(tmp_path / "o"), "--seeds", "0,2"])
    assert seen["args"][3].train_seeds == [0, 2] and not seen["args"][3].late_fusion
    main(["benchmark", "--store", str(stores["B"]), "--out", str(tmp_path / "o"), "--late-fusion"])
    assert seen["args"][3].late_fusion
    with pytest.raises(SystemExit):
        main(["benchmark", "--store", str(stores["B"]), "--out", "o", "--seeds", "0,x"])
    with pytest.raises(ValueError, match="given twice"):
        commands.parse_named(["A=x", "A=y"])


@pytest.mark.slow
def test_real_training_end_to_end(tmp_path):
    """Real trainings and evaluations on tiny stores: intra (carved), cross, 2-fold."""
    a = subject_store(tmp_path / "a", {f"a{i}": "train" if i < 4 else "val" for i in range(6)},
                      name="set_a")  # fmt: skip
    b = subject_store(tmp_path / "b", {f"b{i}": ["train", "val", "test"][i % 3] for i in range(6)},
                      name="set_b")  # fmt: skip
    binary = tmp_path / "binary.yaml"
    binary.write_text("model:\n  kwargs:\n    widths: [8, 16]\n")
    depth = tmp_path / "depth.yaml"
    depth.write_text("model:\n  kwargs:\n    widths: [8, 16, 16]\n")
    settings = Settings(
        models=["binary_cnn", "depth_unet"],
        recipes={"binary_cnn": str(binary), "depth_unet": str(depth)},
        overrides=["data.input_size=32", "data.depth_size=8", "data.batch_size=8",
                   "train.epochs=1", "train.threads=1", "train.device=cpu",
                   "train.warmup_epochs=0", "data.balance=class"],
        folds=2, n_boot=20, device="cpu",
    )  # fmt: skip
    files = bm.benchmark({"a": a, "b": b}, "intra:a,cross:a,kfold:b", tmp_path / "out", settings)
    with open(files["csv"], newline="") as f:
        records = list(csv.DictReader(f))
    cross = [r for r in records if r["protocol"] == "cross"]
    assert {(r["train"], r["test"], r["model"]) for r in cross} == {
        ("b", "a", "binary_cnn"), ("b", "a", "depth_unet"),
    }  # fmt: skip
    assert all(r["n_samples"] == "24" for r in cross)  # all of a: 6 subjects x 4
    intra = next(r for r in records if r["protocol"] == "intra" and r["model"] == "depth_unet")
    assert intra["n_samples"] == "8" and 0.0 <= float(intra["auc"]) <= 100.0  # a's val = test
    assert (tmp_path / "out/eval/intra/a__a/depth_unet/roc.png").is_file()
    pooled = next(r for r in records if r["fold"] == "pooled" and r["model"] == "binary_cnn")
    assert pooled["n_samples"] == "16"  # b's 4 subjects outside its test split (b2, b5) x 4


def tiny_real_cell(tmp_path, models: list[str], **settings) -> tuple[Path, Settings]:
    """One small store (4 train, 2 val subjects) and settings for real 1-epoch trainings of
    `models` at 32 px with 8-16 channels."""
    a = subject_store(tmp_path / "a", {f"a{i}": "train" if i < 4 else "val" for i in range(6)},
                      name="set_a")  # fmt: skip
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text("model:\n  kwargs:\n    widths: [8, 16]\n")
    return a, Settings(
        models=models, recipes=dict.fromkeys(models, str(tiny)),
        overrides=["data.input_size=32", "data.depth_size=8", "data.batch_size=8",
                   "train.epochs=1", "train.threads=1", "train.device=cpu",
                   "train.warmup_epochs=0"],
        n_boot=20, device="cpu", **settings,
    )  # fmt: skip


@pytest.mark.slow
def test_real_trainings_differ_by_seed(tmp_path):
    """Two real trainings of one cell with --seeds 0,1: different weights, so different scores."""
    a, settings = tiny_real_cell(tmp_path, ["binary_cnn"], train_seeds=[0, 1])
    out = tmp_path / "out"
    bm.benchmark({"a": a}, "intra:a", out, settings)
    scores = [report.read_scores_csv(out / f"eval/intra/a__a/seed{s}/binary_cnn/scores.csv")
              for s in (0, 1)]  # fmt: skip
    assert [r["idx"] for r in scores[0]] == [r["idx"] for r in scores[1]]
    gaps = [abs(float(x["score"]) - float(y["score"])) for x, y in zip(*scores, strict=True)]
    assert max(gaps) > 1e-4
    # The real ensemble step: one checkpoint averaging both, scored between its members.
    ensemble = report.read_scores_csv(out / "eval/intra/a__a/ensemble/binary_cnn/scores.csv")
    for x, y, both in zip(*scores, ensemble, strict=True):
        low, high = sorted((float(x["score"]), float(y["score"])))
        assert low - 1e-6 <= float(both["score"]) <= high + 1e-6


@pytest.mark.slow
def test_real_late_fusion_is_the_mean_of_its_two_arms(tmp_path):
    """A real binary CNN and depth U-Net of one cell, and their late fusion: each sample scored
    0.5 x the binary CNN's score + 0.5 x the depth U-Net's."""
    a, settings = tiny_real_cell(tmp_path, ["binary_cnn", "depth_unet"], late_fusion=True)
    out = tmp_path / "out"
    bm.benchmark({"a": a}, "intra:a", out, settings)
    binary, depth, late = (report.read_scores_csv(out / f"eval/intra/a__a/{m}/scores.csv")
                           for m in ("binary_cnn", "depth_unet", "late_fusion"))  # fmt: skip
    assert [r["idx"] for r in late] == [r["idx"] for r in binary] == [r["idx"] for r in depth]
    for b, d, both in zip(binary, depth, late, strict=True):
        assert float(both["score"]) == pytest.approx(
            0.5 * float(b["score"]) + 0.5 * float(d["score"]), abs=2e-6
        )


def test_fold_stats_and_heatmap_layout():
    mean, std = benchmark_results.fold_stats([{"hter": 0.1}, {"hter": 0.3}, {"hter": float("nan")}])
    assert mean["hter"] == pytest.approx(0.2) and std["hter"] == pytest.approx(0.1414, abs=1e-4)

    def rec(protocol, train, test, fold, hter):
        return {"protocol": protocol, "train": train, "test": test, "fold": fold,
                "model": "binary_cnn", "hter": hter}  # fmt: skip

    records = [
        rec("intra", "A", "A", "", 0.05), rec("cross", "A", "B", "", 0.4),
        rec("lodo", "A+C", "B", "", 0.3), rec("kfold5", "A", "A", "pooled", 0.07),
        rec("kfold5", "C", "C", "pooled", 0.09), rec("kfold5", "C", "C", 0, 0.5),
    ]  # fmt: skip
    rows, cols, matrix = benchmark_results.heatmap_values(records, ["binary_cnn"])["binary_cnn"]
    assert rows == ["A", "C", "all but test"] and cols == ["A", "B", "C"]
    expected = [[5, 40, np.nan], [np.nan, np.nan, 9], [np.nan, 30, np.nan]]
    np.testing.assert_allclose(matrix, expected)  # intra wins A's diagonal over k-fold


def test_a_second_family_is_a_model_with_its_own_recipe(stores, tmp_path):
    """`binary_cnn@RECIPE` trains binary_cnn with that recipe as a row of its own, beside the
    default family's binary_cnn, in its own run and evaluation folders."""
    other = tmp_path / "other.yaml"
    other.write_text("data:\n  input_size: 32\n  depth_size: 8\nmodel:\n  kwargs: {dropout: 0.5}\n"
                     "train:\n  epochs: 1\n")  # fmt: skip
    SEPARATION[f"binary_cnn@{other}"] = 0.3
    fake = FakeSteps()
    settings = Settings(models=["binary_cnn", f"binary_cnn@{other}"],
                        recipes=dict.fromkeys(MODELS, recipe(tmp_path)), n_boot=20)  # fmt: skip
    bm.benchmark(stores, "intra:A", tmp_path / "bench", settings, steps=fake.steps())
    plain, family = fake.trained
    assert plain.model.name == family.model.name == "binary_cnn"
    assert "dropout" not in plain.model.kwargs and family.model.kwargs["dropout"] == 0.5
    assert plain.run_name == "binary_cnn" and family.run_name.startswith("binary_cnn-")
    with open(tmp_path / "bench" / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["model"] for r in rows} == {"binary_cnn", f"binary_cnn@{other}"}
    with pytest.raises(ValueError, match="name one twice"):
        bm.benchmark(stores, "intra:A", tmp_path / "b2",
                     Settings(models=["fusion", "fusion"]), steps=FakeSteps().steps())  # fmt: skip
    with pytest.raises(ValueError, match="unknown model"):
        bm.benchmark(stores, "intra:A", tmp_path / "b3",
                     Settings(models=["resnet@lite0_cpu"]), steps=FakeSteps().steps())  # fmt: skip
