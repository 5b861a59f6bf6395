"""Reports and plots from synthetic scores (no model, no torch)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from facepad.evaluate import plots, report


def make_rows(n_subjects: int = 6, seed: int = 0) -> list[dict]:
    """CelebA-Spoof-like rows: live (illumination 'live') and two attack types under 2 lights."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_subjects):
        for k in range(12):
            live = k < 4
            attack = "live" if live else ("photo" if k < 8 else "PC")
            light = "live" if live else ("normal" if k % 2 else "dark")
            score = float(np.clip(rng.normal(0.7 if live else 0.3, 0.15), 0, 1))
            rows.append(
                {
                    "idx": len(rows),
                    "path": f"Data/test/{s}/{'live' if live else 'spoof'}/{k:06d}.jpg",
                    "subject": str(s),
                    "label": "live" if live else "spoof",
                    "attack_type": attack,
                    "attributes": {"illumination": light, "box_file": f"{s}_{k}_BB.txt"},
                    "score": score,
                    "decision": report.decide(score, 0.5),
                }
            )
    return rows


def test_scores_csv_round_trip(tmp_path):
    rows = make_rows()
    path = report.write_scores_csv(rows, tmp_path / "scores.csv")
    header = path.read_text().splitlines()[0]
    assert header == "idx,path,subject,label,attack_type,box_file,illumination,score,decision"
    back = report.read_scores_csv(path)
    assert len(back) == len(rows)
    assert back[5]["attributes"]["illumination"] == rows[5]["attributes"]["illumination"]
    assert back[5]["score"] == pytest.approx(rows[5]["score"], abs=1e-6)
    assert back[5]["idx"] == 5 and back[5]["decision"] == rows[5]["decision"]


def test_read_scores_csv_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="facepad evaluate"):
        report.read_scores_csv(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("idx,path\n0,a.jpg\n")
    with pytest.raises(ValueError, match="bad.csv: missing column"):
        report.read_scores_csv(bad)


def test_breakdown_keys_skip_ids_and_constants():
    rows = make_rows()
    assert report.breakdown_keys(rows) == ["illumination"]  # box_file is a pointer, not a condition


def test_build_report_counts_and_breakdowns(tmp_path):
    rows = make_rows()
    # Force a known outcome: every photo attack accepted, every PC attack rejected, live accepted.
    for r in rows:
        r["score"] = {"live": 0.9, "photo": 0.6, "PC": 0.1}[r["attack_type"]]
    rep = report.build_report(rows, 0.5, name="fake", threshold_source="val EER", n_boot=100)
    o = rep["overall"]
    assert (o["n_live"], o["n_attack"]) == (24, 48)
    assert o["apcer"] == pytest.approx(0.5) and o["bpcer"] == 0.0
    assert o["apcer_worst"] == 1.0 and o["apcer_per_type"] == {"PC": 0.0, "photo": 1.0}
    assert rep["by_attack_type"]["photo"]["apcer"] == 1.0
    assert rep["by_attack_type"]["PC"]["auc"] == 1.0  # PC vs live is separable
    assert rep["by_attack_type"]["photo"]["n_live"] == 24
    illum = rep["by_attribute"]["illumination"]
    assert set(illum) == {"live", "normal", "dark"}
    assert math.isnan(illum["dark"]["bpcer"])  # only attacks under 'dark': stated NaN rule
    assert illum["live"]["bpcer"] == 0.0 and math.isnan(illum["live"]["apcer"])

    json_path, md_path = report.write_report(rep, tmp_path)
    loaded = json.loads(json_path.read_text())  # standard JSON: NaN written as null
    assert loaded["by_attribute"]["illumination"]["dark"]["bpcer"] is None
    md = md_path.read_text()
    assert "| APCER (pooled) | 50.00 |" in md
    assert "| APCER (worst type) | 100.00 |" in md
    assert "## By attack type" in md and "## By illumination" in md
    assert "Only 6 subjects" in md
    assert "| dark | 0 | 24 | 50.00 | - |" in md


def test_build_report_rejects_empty():
    with pytest.raises(ValueError, match="no scored samples"):
        report.build_report([], 0.5)


def _is_png(path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_write_pngs(tmp_path):
    rows = make_rows()
    s = np.array([r["score"] for r in rows])
    y = np.array([r["label"] == "live" for r in rows])
    t = [r["attack_type"] for r in rows]
    curves = {"a": (s, y), "b": (1 - s, y)}
    assert _is_png(plots.plot_roc(curves, tmp_path / "roc.png"))
    assert _is_png(plots.plot_det(curves, tmp_path / "det.png"))
    assert _is_png(plots.plot_histograms(s, y, 0.5, tmp_path / "hist.png", t))
    table = {"binary_cnn": {"apcer": 0.1, "bpcer": 0.2, "acer": 0.15}, "depth_unet": {"apcer": 0}}
    assert _is_png(plots.plot_table_bars(table, tmp_path / "bars.png"))
    idx = plots.pick_depth_examples(s, y, 0.5, n=8)
    images = [np.full((16, 16, 3), (i * 20) % 256, np.uint8) for i in idx]
    depths = [np.eye(4) if y[i] else None for i in idx]
    out = plots.plot_depth_grid(images, depths, s[idx], y[idx], 0.5, tmp_path / "depth.png")
    assert _is_png(out)
    no_depth = [None] * len(idx)
    assert _is_png(plots.plot_depth_grid(images, no_depth, s[idx], y[idx], 0.5, tmp_path / "b.png"))
    with pytest.raises(ValueError, match="no examples"):
        plots.plot_depth_grid([], [], [], [], 0.5, tmp_path / "x.png")


def test_pick_depth_examples_includes_failures():
    scores = np.array([0.9, 0.8, 0.1, 0.2, 0.3, 0.7, 0.95, 0.05])
    is_live = np.array([True, True, True, False, False, False, False, False])
    idx = plots.pick_depth_examples(scores, is_live, 0.5, n=4)
    assert len(idx) == 4 and len(set(idx)) == 4
    assert 2 in idx  # the only rejected live face
    assert {5, 6} & set(idx)  # an accepted attack
    assert {0, 1} & set(idx) and {3, 4, 7} & set(idx)


class _FakeDataset:
    """StoreDataset-shaped items; item 3 is corrupt."""

    def __init__(self, n: int = 7):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        import torch

        if i == 3:
            raise ValueError("corrupt JPEG in shard 0")
        return {"image": torch.full((3, 8, 8), i / 10), "idx": 100 + i, "live": torch.tensor(1.0)}


def test_score_dataset_stops_on_a_corrupt_item():
    import torch

    from facepad.evaluate.evaluate import DatasetError, depth_examples, score_dataset, store_rows

    class Mean(torch.nn.Module):
        def forward(self, x):  # (B, 3, H, W) -> score (B,), depth (B, 1, 2, 2)
            return x.mean(dim=(1, 2, 3)), x[:, :1, :2, :2]

    with pytest.raises(DatasetError, match="item 3 .*ValueError: corrupt JPEG in shard 0"):
        score_dataset(Mean(), _FakeDataset(), batch_size=2)
    idx, scores = score_dataset(Mean(), _FakeDataset(n=3), batch_size=2)
    assert idx.tolist() == [100, 101, 102]
    np.testing.assert_allclose(scores, [0.0, 0.1, 0.2], atol=1e-6)

    store = SimpleNamespace(
        index={
            i: {"idx": i, "split": "test", "path": f"{i}.jpg", "label": "live" if i % 2 else
                "spoof", "attack_type": "live" if i % 2 else "print", "subject": "s",
                "shard": 0, "offset": 0, "length": 1, "session": "01"}
            for i in idx.tolist()
        }
    )  # fmt: skip
    rows = store_rows(store, idx, scores, threshold=0.3)
    assert rows[0]["attributes"] == {"session": "01"}
    assert [r["decision"] for r in rows] == ["spoof", "spoof", "spoof"]
    images, maps, s = depth_examples(Mean(), _FakeDataset(), [1, 2])
    assert images[0].shape == (8, 8, 3) and maps[0].shape == (2, 2)
    np.testing.assert_allclose(s, [0.1, 0.2], atol=1e-6)


def write_tiny_store(
    root: Path, n: int = 12, size: int = 64, corrupt: int | None = 5, n_val: int = 0
) -> Path:
    """A prepared store per docs/ARCHITECTURE.md: n crops (half live, the last n_val in 'val',
    the rest in 'test'), one corrupt JPEG."""
    import simplejpeg

    rng = np.random.default_rng(0)
    (root / "shards").mkdir(parents=True)
    blobs, rows = [], []
    offset = 0
    for i in range(n):
        live = i % 2 == 0
        img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        data = simplejpeg.encode_jpeg(img, quality=90, colorspace="RGB")
        if i == corrupt:
            data = b"\xff\xd8 not a jpeg"
        blobs.append(data)
        rows.append(
            [i, "val" if i >= n - n_val else "test", f"img{i}.jpg", "live" if live else "spoof",
             "live" if live else "print", f"s{i % 3}", 0, offset, len(data), f"0{1 + i % 2}"]
        )  # fmt: skip
        offset += len(data)
    (root / "shards" / "00000.bin").write_bytes(b"".join(blobs))
    np.save(root / "shards" / "00000.depth.npy", np.zeros((n, 16, 16), np.uint8))
    with open(root / "index.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["idx", "split", "path", "label", "attack_type", "subject", "shard", "offset",
                    "length", "session"])  # fmt: skip
        w.writerows(rows)
    meta = {"format_version": 1, "dataset": "tiny", "crop_scale": 1.3, "crop_size": size,
            "depth_size": 16}  # fmt: skip
    (root / "store.json").write_text(json.dumps(meta))
    return root


@pytest.mark.parametrize(
    "model", ["depth_unet", pytest.param("binary_cnn", marks=pytest.mark.slow)]
)
def test_evaluate_checkpoint_end_to_end(tmp_path, model):
    from _infer_helpers import save_tiny_checkpoint

    from facepad.evaluate.evaluate import evaluate_checkpoint

    store = write_tiny_store(tmp_path / "store", corrupt=None)
    ckpt = save_tiny_checkpoint(tmp_path / "best.pt", model, threshold=0.4)
    result = evaluate_checkpoint(ckpt, store, out_dir=tmp_path / "eval", n_boot=50)
    assert result.threshold == 0.4
    assert len(result.rows) == 12 and result.report["overall"]["n_live"] == 6
    for name in ("scores.csv", "report.json", "report.md", "roc.png", "det.png", "histogram.png",
                 "depth_examples.png"):  # fmt: skip
        assert (tmp_path / "eval" / name).is_file(), name
    scores = report.read_scores_csv(tmp_path / "eval" / "scores.csv")
    assert {r["decision"] for r in scores} <= {"live", "spoof"}
    assert all((r["score"] >= 0.4) == (r["decision"] == "live") for r in scores)
    assert "session" in result.report["by_attribute"]

    given = evaluate_checkpoint(
        ckpt, store, threshold=2.0, out_dir=tmp_path / "e2", n_boot=10, figures=False
    )
    assert given.report["overall"]["bpcer"] == 1.0 and given.report["overall"]["apcer"] == 0.0


def test_evaluate_stops_on_a_damaged_store(tmp_path, capsys):
    pytest.importorskip("facepad.data.dataset")
    from _infer_helpers import save_tiny_checkpoint

    from facepad.cli import main
    from facepad.evaluate.evaluate import DatasetError, evaluate_checkpoint

    store = write_tiny_store(tmp_path / "store", corrupt=5)
    ckpt = save_tiny_checkpoint(tmp_path / "best.pt", "binary_cnn", threshold=0.4)
    with pytest.raises(DatasetError) as err:
        evaluate_checkpoint(ckpt, store, out_dir=tmp_path / "eval", n_boot=10)
    msg = str(err.value)
    assert "sample 5 of" in msg and "img5.jpg" in msg and "facepad prepare" in msg
    assert not (tmp_path / "eval" / "report.json").exists()
    assert main(["evaluate", str(ckpt), "--store", str(store), "--out", str(tmp_path / "e")]) == 2
    assert "img5.jpg" in capsys.readouterr().err


def test_evaluate_errors_name_the_fix(tmp_path):
    from _infer_helpers import save_tiny_checkpoint

    from facepad.evaluate.evaluate import evaluate_checkpoint

    store = write_tiny_store(tmp_path / "store", corrupt=None)
    ckpt = save_tiny_checkpoint(tmp_path / "best.pt", "binary_cnn", threshold=None)
    with pytest.raises(ValueError, match=r"best\.pt is uncalibrated.*Pass --threshold T"):
        evaluate_checkpoint(ckpt, store, out_dir=tmp_path / "eval")
    given = evaluate_checkpoint(
        ckpt, store, threshold=0.5, out_dir=tmp_path / "given", n_boot=10, figures=False
    )
    assert given.threshold == 0.5 and given.report["threshold_source"] == "given"
    with pytest.raises(ValueError, match="no 'val' split"):
        evaluate_checkpoint(ckpt, store, split="val", threshold=0.5, out_dir=tmp_path / "eval")


def test_threshold_rule_chosen_on_val(tmp_path):
    from _infer_helpers import save_tiny_checkpoint

    from facepad.evaluate.evaluate import evaluate_checkpoint

    store = write_tiny_store(tmp_path / "store", n=20, corrupt=None, n_val=10)
    ckpt = save_tiny_checkpoint(tmp_path / "best.pt", "binary_cnn", threshold=0.5, seed=1)
    # Evaluated on val itself, each rule's own target must hold there.
    for rule in ("apcer=0", "bpcer=0", "eer"):
        result = evaluate_checkpoint(
            ckpt, store, "val", out_dir=tmp_path / rule, rule=rule, n_boot=10, figures=False
        )
        o = result.report["overall"]
        assert "chosen on val" in result.report["threshold_source"]
        assert not (tmp_path / rule / "roc.png").exists()
        if rule == "apcer=0":
            assert o["apcer"] == 0.0
        elif rule == "bpcer=0":
            assert o["bpcer"] == 0.0
        else:
            assert abs(o["apcer"] - o["bpcer"]) <= 0.2 + 1e-9  # 5 live, 5 attacks: steps of 0.2


def test_parse_rule():
    from facepad.evaluate.evaluate import parse_rule

    assert parse_rule("eer") == ("eer", None)
    assert parse_rule("apcer=0.05") == ("apcer", 0.05)
    for bad in ("apcer", "bpcer=5%", "acer=0.1", "apcer=2"):
        with pytest.raises(ValueError, match="not understood"):
            parse_rule(bad)


def test_end_to_end_counts_failures_to_acquire_both_ways(tmp_path, capsys):
    """Raw images through the Predictor: two faces found, two blanks with dataset boxes (in the
    store, but no face for the detector): FTA counted, with and without the convention."""
    pytest.importorskip("facepad.data.dataset")
    from _infer_helpers import save_tiny_checkpoint
    from _prepare_helpers import face_photos, write_jpeg

    from facepad.cli import main
    from facepad.data.prepare import prepare_store
    from facepad.data.records import ReadResult, Sample
    from facepad.evaluate.evaluate import evaluate_checkpoint
    from facepad.infer.predictor import Predictor

    photos = face_photos()
    blank = write_jpeg(tmp_path / "blank.jpg", np.full((200, 200, 3), 90, np.uint8))
    samples = [
        Sample(write_jpeg(tmp_path / "a.jpg", photos["astronaut"]), "live", "live", "a", "test"),
        Sample(write_jpeg(tmp_path / "g.jpg", photos["grace_hopper"]), "spoof", "print", "g",
               "test"),
        Sample(blank, "live", "live", "b", "test", box=(50.0, 50.0, 100.0, 100.0)),
        Sample(blank, "spoof", "print", "c", "test", box=(40.0, 40.0, 100.0, 100.0)),
    ]  # fmt: skip
    store = prepare_store(ReadResult(samples), tmp_path / "store", dataset_name="e2e",
                          crop_size=64, depth_size=8, workers=1, progress=False,
                          no_mesh_policy="detector-box-ellipse")  # fmt: skip
    ckpt = save_tiny_checkpoint(tmp_path / "best.pt", "depth_unet", threshold=0.5, crop_size=64)
    pipeline = Predictor.from_checkpoint(ckpt, largest_only=True)
    result = evaluate_checkpoint(ckpt, store, threshold=0.0, out_dir=tmp_path / "eval",
                                 n_boot=10, figures=False, pipeline=pipeline)  # fmt: skip
    e2e = result.report["end_to_end"]
    assert (e2e["n_presentations"], e2e["n_fta"], e2e["n_fta_live"], e2e["n_fta_attack"]) == (
        4, 2, 1, 1)  # fmt: skip
    # threshold 0: every face found is accepted as live
    assert (e2e["without_fta"]["apcer"], e2e["without_fta"]["bpcer"]) == (1.0, 0.0)
    assert (e2e["with_fta"]["apcer"], e2e["with_fta"]["bpcer"]) == (0.5, 0.5)
    assert (result.report["overall"]["apcer"], result.report["overall"]["bpcer"]) == (1.0, 0.0)
    # the store cropped the two faces from the detector's box too: the same face, scored alike
    same = e2e["agreement"]["box_source=detector"]
    assert same["n"] == 2 and same["mean_abs_score_diff"] < 0.02
    assert same["decision_agreement"] == 1.0
    rows = report.read_scores_csv(tmp_path / "eval" / "end_to_end_scores.csv")
    assert sorted(r["attributes"]["face_found"] for r in rows) == ["no", "no", "yes", "yes"]
    assert all(r["decision"] == "spoof" for r in rows if r["attributes"]["face_found"] == "no")
    md = (tmp_path / "eval" / "report.md").read_text()
    assert "## End to end (deployed pipeline)" in md and "no face found in 2" in md

    args = ["evaluate", str(ckpt), "--store", str(store), "--out", str(tmp_path / "cli"),
            "--end-to-end"]  # fmt: skip
    assert main(args) == 0
    assert "end to end, with FTA" in capsys.readouterr().out
