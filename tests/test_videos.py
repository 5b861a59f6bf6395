"""Video inputs: frame counting, evenly spaced frames, frame decoding, manifests naming videos."""

from __future__ import annotations

import pytest
from _video_helpers import write_video

from facepad.data.images import ImageError
from facepad.data.manifest import read_manifest
from facepad.data.records import Sample
from facepad.data.videos import (
    frame_count,
    frame_samples,
    load_sample_image,
    read_frame,
    spaced_frames,
)


def test_spaced_frames_include_ends_and_never_repeat():
    assert spaced_frames(21, 5) == [0, 5, 10, 15, 20]
    assert spaced_frames(253, 5) == [0, 63, 126, 189, 252]
    assert spaced_frames(11, 1) == [5]
    assert spaced_frames(3, 5) == [0, 1, 2]  # a short video gives what it has
    with pytest.raises(ValueError, match="at least 1"):
        spaced_frames(10, 0)


@pytest.mark.parametrize("suffix", [".avi", ".mov"])
def test_frame_count_and_seek_decode_the_right_frame(tmp_path, suffix):
    video = write_video(tmp_path / f"clip{suffix}", n_frames=20)
    assert frame_count(video) == 20
    for index in (0, 7, 19):
        rgb = read_frame(video, index)
        assert rgb.shape == (24, 32, 3)
        assert abs(rgb.mean() - 10 * index) < 4  # frame i is grey 10 * i
    with pytest.raises(ImageError, match="frame 25"):
        read_frame(video, 25)


def test_unreadable_video_names_the_file(tmp_path):
    bad = tmp_path / "broken.avi"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(ImageError, match="broken.avi"):
        frame_count(bad)


def test_frame_samples_keep_video_id_and_frame(tmp_path):
    video = write_video(tmp_path / "v.avi", n_frames=9)
    sample = Sample(str(video), "spoof", "print", "s1", "train", attributes={"light": "dim"})
    frames = frame_samples(sample, 3)
    assert [f.attributes["frame"] for f in frames] == ["0", "4", "8"]
    assert {f.attributes["video"] for f in frames} == {str(video)}
    assert all(f.attributes["light"] == "dim" and f.subject == "s1" for f in frames)
    assert abs(load_sample_image(frames[1]).mean() - 40) < 4


def write_video_manifest(root, header, rows):
    for row in rows:
        write_video(root / row.split(",")[0], n_frames=10)
    path = root / "manifest.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_manifest_video_rows_become_frames_grouped_by_subject(tmp_path):
    rows = [
        f"v/{s}_{k}.avi,{'live' if k == 0 else 'spoof'},{'none' if k == 0 else 'replay'},{s}"
        for s in ("a", "b", "c", "d", "e")
        for k in range(2)
    ]
    csv = write_video_manifest(tmp_path, "path,label,attack_type,subject", rows)
    result = read_manifest(csv, val_fraction=0.2, test_fraction=0.2, seed=1, frames_per_video=4)
    assert len(result.samples) == 40 and result.counts["videos"] == 10
    splits_of = {}
    for s in result.samples:
        splits_of.setdefault(s.subject, set()).add(s.split)
        assert s.attributes["video"].startswith(f"v/{s.subject}_")
    assert all(len(v) == 1 for v in splits_of.values())  # a subject's frames share one split
    assert {s.split for s in result.samples} == {"train", "val", "test"}
    with pytest.raises(ValueError, match="--frames-per-video"):
        read_manifest(csv)


def test_no_subject_column_groups_by_video(tmp_path):
    rows = [f"v/clip{i}.mov,{'live' if i % 2 else 'spoof'}" for i in range(6)]
    csv = write_video_manifest(tmp_path, "path,label", rows)
    (tmp_path / "v" / "clip5.mov").write_bytes(b"broken")
    with pytest.warns(UserWarning, match="every video is treated as its own subject"):
        result = read_manifest(csv, frames_per_video=3, test_fraction=0.3)
    videos = {s.attributes["video"] for s in result.samples}
    assert len(videos) == 5 and len(result.samples) == 15
    assert all(s.subject == s.attributes["video"] for s in result.samples)
    assert result.counts["unreadable_video"] == 1
    assert "unreadable video" in result.skipped[0].reason


def test_video_column_of_a_frame_manifest_groups_frames(tmp_path):
    from _readers_helpers import write_image

    rows = []
    for v in range(6):
        for f in range(3):
            rel = f"frames/v{v}/f{f}.jpg"
            write_image(tmp_path / rel)
            rows.append(f"{rel},{'live' if v % 2 else 'spoof'},vid{v}")
    csv = tmp_path / "manifest.csv"
    csv.write_text("\n".join(["path,label,video", *rows]) + "\n")
    with pytest.warns(UserWarning, match="every video"):
        result = read_manifest(csv, test_fraction=0.3, seed=2)
    split_of = {}
    for s in result.samples:
        assert s.subject == s.attributes["video"]
        split_of.setdefault(s.subject, set()).add(s.split)
    assert len(split_of) == 6 and all(len(v) == 1 for v in split_of.values())


def test_prepare_cuts_crops_from_video_frames(tmp_path):
    """Real faces in generated videos: prepare decodes each picked frame and keeps its ids."""
    from _prepare_helpers import face_photos

    from facepad.data.prepare import prepare_store
    from facepad.data.store import PreparedStore

    face = face_photos()["astronaut"][:256, 96:352]  # (256, 256, 3), face in the middle
    write_video(tmp_path / "real" / "s1_live.avi", n_frames=8, base=face)
    write_video(tmp_path / "attack" / "s1_print.avi", n_frames=8, base=face)
    csv = tmp_path / "manifest.csv"
    csv.write_text(
        "path,label,attack_type,subject,split\n"
        "real/s1_live.avi,live,none,s1,train\nattack/s1_print.avi,spoof,print,s1,train\n"
    )
    read = read_manifest(csv, val_fraction=0.0, frames_per_video=2)
    out = prepare_store(read, tmp_path / "store", dataset_name="videos", crop_size=64,
                        workers=1, progress=False)  # fmt: skip
    store = PreparedStore(out)
    assert len(store) == 4
    assert [(r["frame"], r["label"]) for r in store.index] == [
        ("0", "spoof"), ("7", "spoof"), ("0", "live"), ("7", "live"),
    ]  # fmt: skip
    assert {r["video"] for r in store.index} == {"real/s1_live.avi", "attack/s1_print.avi"}
    assert store.meta["counts"]["depth_target"] == {"mesh": 2, "zeros": 2}
    assert store.read_crop(0).shape == (64, 64, 3)
