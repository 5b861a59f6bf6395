"""`facepad reproduce` orchestration with fake steps (no data, no training)."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from facepad.config import load_config
from facepad.evaluate import report
from facepad.evaluate.evaluate import end_to_end_report
from facepad.evaluate.reproduce import MODELS, Source, Steps, recipe_for, reproduce, table_markdown

# Per model: how far apart the fake live and attack scores are (depth better than binary).
SEPARATION = {"binary_cnn": 0.2, "depth_unet": 0.45, "fusion": 0.5}


class FakeSteps:
    """Counts calls; writes what the real steps write, with synthetic scores."""

    def __init__(self, tmp: Path):
        self.calls = {"prepare": 0, "train": 0, "evaluate": 0}
        self.train_overrides: list[list[str]] = []
        self.recipe = tmp / "fake.yaml"
        self.recipe.write_text("train:\n  epochs: 1\n")

    def steps(self) -> Steps:
        return Steps(
            self.prepare,
            self.train,
            self.evaluate,
            recipe=lambda model, source, config_set: self.recipe,
            settings=lambda recipes, source: {"crop_size": 64},
        )

    def prepare(self, source, store, work, settings):
        assert settings == {"crop_size": 64}
        self.calls["prepare"] += 1
        store.mkdir(parents=True)
        (store / "store.json").write_text("{}")
        return store

    def train(self, recipe, overrides):
        self.calls["train"] += 1
        self.train_overrides.append(overrides)
        values = dict(o.split("=", 1) for o in overrides)
        run = Path(values["out_dir"]) / values["run_name"]
        run.mkdir(parents=True, exist_ok=True)
        (run / "config.yaml").write_text(f"model:\n  name: {values['model.name']}\n")
        (run / "best.pt").write_bytes(b"fake")
        return run / "best.pt"

    def evaluate(self, ckpt, store, out_dir, name):
        self.calls["evaluate"] += 1
        rng = np.random.default_rng(0)
        rows = []
        for i in range(120):
            live = i % 3 == 0
            sep = SEPARATION[name] * (1 if live else -1)
            score = float(np.clip(0.5 + sep + rng.normal(0, 0.15), 0, 1))
            rows.append(
                {
                    "idx": i,
                    "path": f"{i}.jpg",
                    "subject": str(i % 10),
                    "label": "live" if live else "spoof",
                    "attack_type": "live" if live else ("photo" if i % 2 else "PC"),
                    "attributes": {},
                    "score": score,
                    "decision": report.decide(score, 0.5),
                }
            )
        rep = report.build_report(rows, 0.5, name=name, n_boot=50)
        # end to end: the same scores, except that no face is found in the first 4 images
        e2e = [r | {"attributes": {"face_found": "no" if r["idx"] < 4 else "yes"}} for r in rows]
        e2e = [r | {"score": -1.0} if r["idx"] < 4 else r for r in e2e]
        rep["end_to_end"] = end_to_end_report(rows, e2e, 0.5)
        report.write_scores_csv(rows, out_dir / "scores.csv")
        report.write_report(rep, out_dir)
        return SimpleNamespace(rows=rows, report=rep)


def test_reproduce_writes_table_and_figures_then_reuses(tmp_path, capsys):
    fake = FakeSteps(tmp_path)
    out = tmp_path / "results" / "demo"
    result = reproduce(Source("demo"), out, steps=fake.steps())
    assert fake.calls == {"prepare": 1, "train": 3, "evaluate": 3}
    assert list(result.table) == list(MODELS)
    # The fake depth arm separates better: Table I must show it with lower ACER.
    assert result.table["depth_unet"]["acer"] < result.table["binary_cnn"]["acer"]
    for name in ("table1.md", "table1.csv", "figure2.png", "roc.png", "det.png", "timings.json"):
        assert (out / name).is_file(), name
    for model in MODELS:
        assert (out / "configs" / f"{model}.yaml").is_file()
        assert (out / "configs" / f"{model}.recipe.yaml").is_file()
    overrides = dict(o.split("=", 1) for o in fake.train_overrides[0])
    assert overrides["data.store"] == str(out / "store") and overrides["model.name"] == MODELS[0]
    with open(out / "table1.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows] == list(MODELS)
    assert float(rows[1]["acer"]) == pytest.approx(100 * result.table["depth_unet"]["acer"], 1e-3)
    printed = capsys.readouterr().out
    assert "| depth_unet |" in printed and "[8/8] Table I" in printed
    assert "End to end" in printed and "End to end" in (out / "table1.md").read_text()
    with open(out / "table1_end_to_end.csv") as f:
        e2e = list(csv.DictReader(f))
    assert [r["model"] for r in e2e] == list(MODELS) and {r["n_fta"] for r in e2e} == {"4"}
    assert {r["agreement"] for r in e2e} == {"100.00"}  # faces found score as in the store

    # A rerun trains and evaluates nothing and gives the same table.
    again = reproduce(Source("demo"), out, steps=fake.steps())
    assert fake.calls == {"prepare": 1, "train": 3, "evaluate": 3}
    for model in MODELS:
        assert again.table[model]["acer"] == pytest.approx(result.table[model]["acer"])

    # --force redoes every step.
    reproduce(Source("demo"), out, models=["binary_cnn"], force=True, steps=fake.steps())
    assert fake.calls == {"prepare": 2, "train": 4, "evaluate": 4}


def test_reproduce_rejects_bad_arguments(tmp_path):
    fake = FakeSteps(tmp_path)
    with pytest.raises(ValueError, match="unknown model"):
        reproduce(Source("demo"), tmp_path / "r", models=["resnet"], steps=fake.steps())
    with pytest.raises(ValueError, match="config set"):
        reproduce(Source("demo"), tmp_path / "r", config_set="tpu", steps=fake.steps())
    assert fake.calls["prepare"] == 0


def test_recipe_lookup_names_what_it_tried():
    with pytest.raises(FileNotFoundError, match="no_such_model_cpu.yaml.*celeba_cpu.yaml"):
        recipe_for("no_such_model", Source("celeba", "/x"), "cpu")


def test_table_markdown_says_which_apcer():
    table = {"binary_cnn": {k: 0.1 for k in ("apcer", "bpcer", "acer", "acc", "auc", "eer")}}
    table["binary_cnn"]["apcer_worst"] = float("nan")
    md = table_markdown(table)
    assert "| binary_cnn | 10.00 | 10.00 | 10.00 | 10.00 | 10.00 | 10.00 | - |" in md
    assert "pooled" in md and "worst" in md


def test_cli_parses_reproduce_and_evaluate():
    import argparse

    from facepad.evaluate.commands import register

    parser = argparse.ArgumentParser(prog="facepad")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        ["reproduce", "--manifest", "m.csv", "--test-subjects", "0007", "0008", "--out", "r"]
    )
    assert args.manifest == "m.csv" and args.test_subjects == ["0007", "0008"]
    args = parser.parse_args(["evaluate", "ck.pt", "--store", "s", "--threshold", "0.3"])
    assert args.threshold == 0.3 and args.split == "test"
    with pytest.raises(SystemExit):
        parser.parse_args(["reproduce", "--dataset", "demo", "--manifest", "m.csv", "--out", "r"])


def test_recipes_and_store_settings_from_the_checkout():
    from facepad.evaluate.reproduce import config_dirs, store_settings

    if not (config_dirs()[0] / "demo_cpu.yaml").is_file():
        pytest.skip("configs/ not in this checkout")
    demo = recipe_for("depth_unet", Source("demo"), "cpu")
    assert demo.name == "demo_cpu.yaml"
    manifest = Source("manifest", "m.csv")
    assert recipe_for("binary_cnn", manifest, "cpu").name == "nuaa_cpu.yaml"
    # depth and fusion have their own manifest recipe (a CDC encoder: nuaa_cpu_cdc.yaml)
    fusion = recipe_for("fusion", manifest, "cpu")
    assert fusion.name == "nuaa_fusion_cpu.yaml"
    assert load_config(fusion, []).model.kwargs["theta"] > 0
    assert recipe_for("binary_cnn", Source("celeba", "/x"), "gpu").name == "celeba_intra_gpu.yaml"
    settings = store_settings([demo], Source("demo"))
    assert settings["crop_size"] >= 64 and settings["val_fraction"] == 0.1
