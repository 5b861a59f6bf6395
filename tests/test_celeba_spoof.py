"""CelebA-Spoof reader: format details, every known defect, protocols, errors, load_box."""

from __future__ import annotations

import json

import pytest
from _readers_helpers import write_tree

from facepad.data import celeba_spoof
from facepad.data.celeba_spoof import load_box, read_celeba_spoof
from facepad.data.split import choose_subjects, split_by_subject


@pytest.fixture
def tree(tmp_path):
    return write_tree(tmp_path / "CelebA_Spoof")


def by_name(result):
    return {s.path.rsplit("/", 1)[1]: s for s in result.samples}


def test_reads_every_defect_with_hand_counted_expectations(tree):
    result = read_celeba_spoof(tree, val_fraction=0.0)
    samples = by_name(result)
    # 12 entries: 000006 image missing, 000007 a 43-int vector -> 10 samples
    assert sorted(samples) == [f"0000{i:02d}.{ext}" for i, ext in [
        (1, "jpg"), (2, "png"), (3, "jpg"), (4, "jpg"), (5, "jpg"), (8, "jpg"), (9, "jpg"),
        (10, "jpg"), (11, "png"), (12, "jpg")]]  # fmt: skip
    reasons = {s.path.rsplit("/", 1)[1]: s.reason for s in result.skipped}
    assert reasons["000006.jpg"] == "image file missing"
    assert "44 ints" in reasons["000007.jpg"] and "43 values" in reasons["000007.jpg"]
    c = result.counts
    assert (c["entries"], c["entries_train"], c["entries_test"]) == (12, 9, 3)
    assert (c["entries_json"], c["entries_txt"], c["txt_only"]) == (12, 0, 0)
    assert (c["missing_image"], c["bad_vector"], c["missing_box_file"]) == (1, 1, 1)
    assert c["label_folder_disagree"] == 1
    assert (c["images_jpg"], c["images_png"]) == (8, 2)
    assert c["subjects_in_train_and_test"] == 1  # subject 1001
    assert (c["train"], c["test"], c["train_live"], c["test_live"]) == (7, 3, 2, 2)
    assert c["train_subjects"] == 5 and c["test_subjects"] == 2

    # the JSON label wins over the live folder
    s3 = samples["000003.jpg"]
    assert (s3.label, s3.attack_type, s3.subject) == ("spoof", "PC", "1002")
    assert s3.attributes["illumination"] == "back" and s3.attributes["environment"] == "outdoor"
    s2 = samples["000002.png"]
    assert (s2.label, s2.attack_type, s2.split) == ("spoof", "photo", "train")
    assert s2.attributes == {
        "spoof_type_id": "1",
        "illumination": "strong",
        "environment": "indoor",
        "label_source": "json",
        "box_file": str(tree / "Data/train/1001/spoof/000002_BB.txt"),
    }
    assert s2.path == str(tree / "Data/train/1001/spoof/000002.png") and s2.box is None
    assert samples["000001.jpg"].attack_type == "live" and samples["000001.jpg"].is_live
    assert samples["000008.jpg"].attack_type == "face_mask"
    assert samples["000011.png"].attack_type == "region_mask"
    assert samples["000011.png"].split == "test"


def test_validation_is_carved_from_train_by_subject(tree):
    result = read_celeba_spoof(tree, val_fraction=0.4, seed=3)
    train = {s.subject for s in result.samples if s.split == "train"}
    val = {s.subject for s in result.samples if s.split == "val"}
    assert len(val) == 2 and not train & val  # round(0.4 * 5 subjects)
    assert {s.split for s in result.samples if s.path.split("/")[-4] == "test"} == {"test"}
    again = read_celeba_spoof(tree, val_fraction=0.4, seed=3)
    assert [s.split for s in again.samples] == [s.split for s in result.samples]
    other = [read_celeba_spoof(tree, val_fraction=0.4, seed=k).counts["val"] for k in range(6)]
    assert len(set(other)) > 1  # the seed matters


def test_check_files_false_keeps_missing_images(tree):
    result = read_celeba_spoof(tree, val_fraction=0.0, check_files=False)
    assert result.counts["samples"] == 11 and result.counts["missing_image"] == 0


def test_indented_json_and_chunk_boundaries_give_the_same_result(tree, tmp_path, monkeypatch):
    base = read_celeba_spoof(tree, val_fraction=0.2)
    indented = read_celeba_spoof(write_tree(tmp_path / "ind", indent=2), val_fraction=0.2)
    monkeypatch.setattr(celeba_spoof, "_CHUNK_CHARS", 37)  # entries split across chunks
    chunked = read_celeba_spoof(tree, val_fraction=0.2)

    def key(r):
        return [(s.path.split("Data/")[1], s.label, s.attack_type, s.split) for s in r.samples]

    assert key(base) == key(indented) == key(chunked)


def test_protocol2_paths(tmp_path):
    root = write_tree(tmp_path / "cs", protocol="protocol2/test_on_low_quality_device")
    result = read_celeba_spoof(root, protocol="protocol2_low", val_fraction=0.0)
    assert result.counts["samples"] == 10
    with pytest.raises(FileNotFoundError) as err:
        read_celeba_spoof(root, protocol="intra_test")
    msg = str(err.value)
    assert "intra_test" in msg and "protocol2/test_on_low_quality_device" in msg
    assert "Protocols present" in msg


def test_unknown_protocol_lists_known_ones(tree):
    with pytest.raises(ValueError, match="protocol1"):
        read_celeba_spoof(tree, protocol="protocol9")


def test_missing_root_and_metas_errors(tmp_path, tree):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_celeba_spoof(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="pass that folder"):
        read_celeba_spoof(tree.parent)  # the parent that holds CelebA_Spoof/
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="metas"):
        read_celeba_spoof(tmp_path / "empty")


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[1, 2, 3]", "starts with"),
        ('{"Data/train/1/live/1.jpg": 5}', "unexpected text"),
        ('{"Data/train/1/live/1.jpg": {"a": 1}}', "unexpected text"),
        ('{"images": [{"file": "a.jpg"}]}', "no usable entry"),
        ('{"Data/train/1/live/1.jpg": [0, 0', "unexpected text at the end"),
        ("x", "starts with"),
    ],
)
def test_json_that_is_not_celeba_spoof(tree, text, fragment):
    path = tree / "metas/intra_test/train_label.json"
    path.write_text(text)
    with pytest.raises(ValueError) as err:
        read_celeba_spoof(tree)
    assert fragment in str(err.value) and str(path) in str(err.value)
    assert "44 ints" in str(err.value)  # says what the file should be


def test_duplicate_entries_are_skipped(tree):
    path = tree / "metas/intra_test/test_label.json"
    labels = json.loads(path.read_text())
    train = json.loads((tree / "metas/intra_test/train_label.json").read_text())
    labels["Data/train/1001/live/000001.jpg"] = train["Data/train/1001/live/000001.jpg"]
    path.write_text(json.dumps(labels))
    result = read_celeba_spoof(tree, val_fraction=0.0)
    assert result.counts["duplicate_entries"] == 1 and result.counts["samples"] == 10


@pytest.mark.parametrize(
    "text, size, expected",
    [
        ("10 20 100 120 0.99\n", (448, 224), ((20.0, 20.0, 200.0, 120.0), None)),
        ("-10 -5 50 60 0.9", (224, 224), ((0.0, 0.0, 40.0, 55.0), None)),  # negative: clipped
        ("200 200 100 100 1", (224, 112), ((200.0, 100.0, 24.0, 12.0), None)),  # clipped
        ("", (224, 224), (None, "box_empty")),
        ("\n  \n", (224, 224), (None, "box_empty")),
        ("5 5 -20 30 0.8", (224, 224), (None, "box_zero_area")),
        ("5 5 0 30 0.8", (224, 224), (None, "box_zero_area")),
        ("abc def", (224, 224), (None, "box_unparsable")),
        ("1 2 3", (224, 224), (None, "box_unparsable")),
        ("nan 2 3 4 1", (224, 224), (None, "box_unparsable")),
        ("300 300 10 10 1", (224, 224), (None, "box_outside_image")),
    ],
)
def test_load_box(tmp_path, text, size, expected):
    path = tmp_path / "000001_BB.txt"
    path.write_text(text)
    assert load_box(path, *size) == expected


def test_load_box_missing_file(tmp_path):
    assert load_box(tmp_path / "x_BB.txt", 10, 10) == (None, "box_file_missing")


def test_reader_boxes_resolve_with_load_box(tree):
    samples = by_name(read_celeba_spoof(tree, val_fraction=0.0))
    assert load_box(samples["000004.jpg"].attributes["box_file"], 16, 12) == (None, "box_empty")
    assert load_box(samples["000009.jpg"].attributes["box_file"], 16, 12)[1] == "box_file_missing"
    box, problem = load_box(samples["000001.jpg"].attributes["box_file"], 224, 224)
    assert problem is None and box == (10.0, 20.0, 100.0, 120.0)


def test_choose_subjects_is_order_free_and_keeps_one_back():
    subjects = [str(i) for i in range(50)]
    assert choose_subjects(subjects, 0.1, 1) == choose_subjects(reversed(subjects), 0.1, 1)
    assert len(choose_subjects(subjects, 0.1, 1)) == 5
    assert choose_subjects(["a", "b"], 0.9, 0) in ({"a"}, {"b"})
    assert choose_subjects(["a"], 0.5, 0) == set() and choose_subjects(subjects, 0.0, 0) == set()
    with pytest.raises(ValueError):
        choose_subjects(subjects, 1.0, 0)


def test_split_by_subject_moves_whole_subjects(tree):
    result = read_celeba_spoof(tree, val_fraction=0.0)
    moved = split_by_subject(result.samples, 0.5, seed=0)
    for s in result.samples:
        if s.subject in moved and s.path.split("/")[-4] != "test":
            assert s.split == "val"
        elif s.split != "test":
            assert s.split == "train"


# ---- TXT label lists, test-only protocols, the real CelebA-Spoof sample --------------------


def write_txt(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("empty_train", ["absent", "", "{}", "  \n"])
def test_protocol_with_a_test_list_only(tree, empty_train):
    train = tree / "metas/intra_test/train_label.json"
    if empty_train == "absent":
        train.unlink()
    else:
        train.write_text(empty_train)
    result = read_celeba_spoof(tree, val_fraction=0.3)
    assert {s.split for s in result.samples} == {"test"}
    assert result.counts["entries_train"] == 0 and result.counts["test"] == 3


def test_no_entry_in_any_list_is_an_error(tree):
    for split in ("train", "test"):
        (tree / f"metas/intra_test/{split}_label.json").write_text("{}")
    with pytest.raises(ValueError, match="no entry in the label lists"):
        read_celeba_spoof(tree)


def test_txt_only_protocol(tree):
    """protocol1 ships TXT lists: label from the TXT, attributes unknown, recorded as such."""
    write_txt(tree / "metas/protocol1/train_label.txt", [
        "Data/train/1001/live/000001.jpg 0",
        "Data/train/1002/live/000003.jpg 1",  # live folder, labelled spoof: the list wins
        "Data/train/1003/live/000006.jpg 0",  # image missing
        "",
        "Data/train/1001/spoof/000002.png\t1",
    ])  # fmt: skip
    write_txt(tree / "metas/protocol1/test_label.txt", ["Data/test/2001/spoof/000011.png 1"])
    result = read_celeba_spoof(tree, protocol="protocol1", val_fraction=0.0)
    samples = by_name(result)
    assert sorted(samples) == ["000001.jpg", "000002.png", "000003.jpg", "000011.png"]
    s3 = samples["000003.jpg"]
    assert (s3.label, s3.attack_type, s3.split) == ("spoof", "unknown", "train")
    assert s3.attributes["label_source"] == "txt"
    assert {s3.attributes[k] for k in ("spoof_type_id", "illumination", "environment")} == {
        "unknown"
    }
    assert samples["000001.jpg"].attack_type == "live"
    c = result.counts
    assert (c["entries_txt"], c["txt_only"], c["missing_image"]) == (5, 5, 1)
    assert c["label_folder_disagree"] == 1 and c["entries_json"] == 0


def test_json_and_txt_together(tree):
    """The JSON's vector wins; the TXT adds the images the JSON lacks; disagreements counted."""
    write_txt(tree / "metas/intra_test/test_label.txt", [
        "Data/test/1001/live/000010.jpg 1",  # the JSON says live: JSON wins, counted
        "Data/test/2001/spoof/000011.png 1",  # agrees with the JSON
        "Data/test/2001/live/000012.jpg 0",
        "Data/train/1005/spoof/000008.jpg 1",  # already in train's JSON: a duplicate
        "Data/test/2002/live/000013.jpg 0",  # only in the TXT
        "Data/test/2002/live/000014.jpg",  # malformed line
    ])  # fmt: skip
    from _readers_helpers import write_image

    write_image(tree / "Data/test/2002/live/000013.jpg")
    result = read_celeba_spoof(tree, val_fraction=0.0)
    samples = by_name(result)
    assert samples["000010.jpg"].label == "live"
    assert samples["000010.jpg"].attributes["label_source"] == "json"
    assert samples["000011.png"].attack_type == "region_mask"
    s13 = samples["000013.jpg"]
    assert (s13.label, s13.split, s13.attributes["label_source"]) == ("live", "test", "txt")
    assert s13.attributes["illumination"] == "unknown"
    c = result.counts
    assert (c["json_txt_disagree"], c["txt_only"], c["duplicate_entries"]) == (1, 1, 1)
    assert c["bad_txt_line"] == 1 and c["entries_test"] == 4 and c["samples"] == 11
    bad = [s for s in result.skipped if "line 6" in s.reason]
    assert bad and bad[0].path.endswith("test_label.txt")


def test_txt_that_is_not_celeba_spoof(tree):
    path = tree / "metas/intra_test/test_label.txt"
    write_txt(path, ["path,label", "a.jpg,live"])
    with pytest.raises(ValueError) as err:
        read_celeba_spoof(tree)
    assert str(path) in str(err.value) and "<0|1>" in str(err.value)


def test_wrong_root_with_lists_but_no_images(tmp_path):
    write_txt(tmp_path / "cs/metas/intra_test/test_label.txt", ["Data/test/1/live/1.png 0"])
    with pytest.raises(FileNotFoundError, match="none of the 1 images"):
        read_celeba_spoof(tmp_path / "cs")


@pytest.fixture(scope="module")
def celeba_sample():
    from conftest import DEV_DATA

    root = DEV_DATA / "celeba-spoof-sample" / "CelebA_Spoof"
    if not (root / "metas" / "intra_test" / "test_label.txt").is_file():
        pytest.skip(f"celeba-spoof-sample not found at {root}")
    return root


def test_real_sample_every_listed_image_accounted_for(celeba_sample):
    result = read_celeba_spoof(celeba_sample)
    c = result.counts
    assert (c["entries"], c["entries_test"], c["entries_train"]) == (67170, 67170, 0)
    assert (c["samples"], c["missing_image"], c["missing_box_file"]) == (22, 67148, 0)
    assert (c["entries_json"], c["txt_only"], c["json_txt_disagree"]) == (11, 67159, 0)
    assert (c["test_live"], c["test_spoof"], c["test_subjects"]) == (11, 11, 11)
    assert len(result.skipped) == 67148
    assert {s.reason for s in result.skipped} == {"image file missing"}


def test_real_sample_attributes_match_the_json_vectors(celeba_sample):
    """Each decoded attribute checked against the released 44-int vectors, read with json."""
    vectors = json.loads((celeba_sample / "metas/intra_test/test_label.json").read_text())
    labels = {}
    for line in (celeba_sample / "metas/intra_test/test_label.txt").read_text().splitlines():
        key, label = line.split()
        labels[key] = int(label)
    result = read_celeba_spoof(celeba_sample)
    assert len(vectors) == 11
    for s in result.samples:
        key = s.path.split("CelebA_Spoof/", 1)[1]
        assert s.label == ("spoof" if labels[key] else "live")
        assert s.subject == key.split("/")[2]
        if key not in vectors:
            assert s.attributes["label_source"] == "txt"
            assert s.attributes["illumination"] == s.attributes["environment"] == "unknown"
            continue
        vec = vectors[key]
        assert s.attributes["label_source"] == "json"
        assert s.label == ("spoof" if vec[43] else "live")
        assert s.attack_type == celeba_spoof.CELEBA_SPOOF_TYPES[vec[40]]
        assert s.attributes["spoof_type_id"] == str(vec[40])
        assert s.attributes["illumination"] == celeba_spoof.CELEBA_ILLUMINATION[vec[41]]
        assert s.attributes["environment"] == celeba_spoof.CELEBA_ENVIRONMENT[vec[42]]


@pytest.mark.slow
def test_real_sample_prepare_and_evaluate_end_to_end(celeba_sample, tmp_path):
    """The sample holds a test list only: prepare makes a test-only store from its 22 images
    (67,148 listed-but-absent images recorded, not fatal) and a model evaluates on it, from the
    store and end to end."""
    from _infer_helpers import save_tiny_checkpoint

    from facepad.data.prepare import prepare_store
    from facepad.data.store import PreparedStore
    from facepad.evaluate.evaluate import evaluate_checkpoint
    from facepad.infer.predictor import Predictor

    read = read_celeba_spoof(celeba_sample)
    out = prepare_store(read, tmp_path / "store", dataset_name="celeba_spoof", crop_size=64,
                        depth_size=16, workers=1, progress=False)  # fmt: skip
    store = PreparedStore(out)
    counts = store.meta["counts"]
    assert store.splits() == ["test"] and len(store) == 22
    assert counts["box_source"] == {"dataset": 22} and counts["failed"] == 0
    assert counts["reader"]["missing_image"] == 67148
    assert counts["skipped_by_reason"] == {"reader": 67148}
    assert {row["label_source"] for row in store.index} == {"json", "txt"}

    ckpt = save_tiny_checkpoint(tmp_path / "best.pt", "binary_cnn", threshold=0.5, crop_size=64)
    pipeline = Predictor.from_checkpoint(ckpt, largest_only=True)
    result = evaluate_checkpoint(ckpt, out, out_dir=tmp_path / "eval", n_boot=10,
                                 figures=False, pipeline=pipeline)  # fmt: skip
    rep = result.report
    assert rep["n_samples"] == 22 and rep["overall"]["n_live"] == 11
    assert set(rep["by_attribute"]["label_source"]) == {"json", "txt"}
    e2e = rep["end_to_end"]
    assert e2e["n_presentations"] == 22 and e2e["n_fta"] <= 1  # measured: a face in all 22
    assert e2e["agreement"]["box_source=dataset"]["n"] == 22 - e2e["n_fta"]
