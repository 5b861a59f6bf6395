"""Read CelebA-Spoof label files of the real size: wall time and peak memory.

Writes intra_test label JSONs with 494,405 train + 67,170 test entries in the released form
(realistic subject ids, image names, spoof types, ~2,000 live-folder images labelled spoof, a PNG
share, subjects in both splits; no images) into a temp dir, then times
`read_celeba_spoof(check_files=False)` (parse + validate + split) and an index step (per-split
and per-subject lists), and reports peak memory. `--with-txt` also writes the TXT lists the
release ships beside the JSONs (same images, `<path> <0|1>`), which the reader then cross-checks.

`--sample ROOT` (default: the development sample beside the checkout, when present) also times
reading a real CelebA-Spoof root with the complete 67,170-line intra-test list and checking which
listed images exist (check_files=True).

    .venv/bin/python benchmarks/celeba_scale.py [--repeat 3] [--keep DIR] [--with-txt]
        [--sample ROOT]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from _devdata import DEV_DATA

from facepad.data.celeba_spoof import read_celeba_spoof

N_TRAIN, N_TEST = 494_405, 67_170
TRAIN_SUBJECTS, TEST_SUBJECTS = range(1, 8193), range(8193, 10178)  # ids as in the release


def write_labels(
    path: Path, split: str, n: int, subjects: range, rng: random.Random, txt: bool = False
) -> None:
    """One `{split}_label.json` with n entries spread over `subjects`, written as a stream (and
    the same images as `{split}_label.txt` when `txt`)."""
    live_attrs = [", ".join(str(rng.randint(0, 1)) for _ in range(40)) for _ in range(512)]
    zeros = ", ".join(["0"] * 40)
    per_subject = n // len(subjects) + 1
    written = 0
    txt_path = path.with_suffix(".txt") if txt else os.devnull
    with open(path, "w") as f, open(txt_path, "w") as lines:
        f.write("{")
        for subject in subjects:
            for i in range(per_subject):
                if written == n:
                    break
                spoof = rng.random() < 0.68  # 422,938 of 625,537 images are spoofs
                ext = "png" if rng.random() < 0.03 else "jpg"
                folder = "spoof" if spoof else "live"
                if not spoof and split == "train" and rng.random() < 0.0125:
                    spoof = True  # ~2,000 live-folder images labelled spoof
                if spoof:
                    tail = f"{rng.randint(1, 10)}, {rng.randint(1, 4)}, {rng.randint(1, 2)}, 1"
                    vec = f"{zeros}, {tail}"
                else:
                    vec = f"{rng.choice(live_attrs)}, 0, 0, 0, 0"
                sep = ", " if written else ""
                key = f"Data/{split}/{subject}/{folder}/{i:06d}.{ext}"
                f.write(f'{sep}"{key}": [{vec}]')
                lines.write(f"{key} {int(spoof)}\n")
                written += 1
        f.write("}")


def make_label_set(root: Path, seed: int = 0, txt: bool = False) -> Path:
    metas = root / "metas" / "intra_test"
    metas.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    write_labels(metas / "train_label.json", "train", N_TRAIN, TRAIN_SUBJECTS, rng, txt)
    # 150 test subjects also appear in train, as in the release
    test_subjects = range(TEST_SUBJECTS.start - 150, TEST_SUBJECTS.stop - 150)
    write_labels(metas / "test_label.json", "test", N_TEST, test_subjects, rng, txt)
    (root / "Data").mkdir(exist_ok=True)
    return root


def read_and_index(root: Path):
    result = read_celeba_spoof(root, check_files=False)
    t_read = time.perf_counter()
    by_split: dict[str, list[int]] = {}
    by_subject: dict[str, list[int]] = {}
    for i, sample in enumerate(result.samples):
        by_split.setdefault(sample.split, []).append(i)
        by_subject.setdefault(sample.subject, []).append(i)
    return result, t_read, by_split, by_subject


def time_real_root(root: Path, repeat: int) -> None:
    """Read a real root with its complete lists, checking which listed images exist."""
    walls, cpus = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        result = read_celeba_spoof(root)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    c = result.counts
    print(
        f"real root {root}: {c['entries']:,} listed ({c['entries_json']:,} JSON vectors, "
        f"{c['entries_txt']:,} TXT lines), {c['samples']:,} present, {c['missing_image']:,} "
        f"missing; read + check files: median {statistics.median(walls):.2f} s wall, "
        f"{statistics.median(cpus):.2f} s CPU (runs: {', '.join(f'{t:.2f}' for t in walls)})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (median reported)")
    parser.add_argument("--keep", type=Path, help="write the label set here and keep it")
    parser.add_argument("--with-txt", action="store_true", help="also write the TXT lists")
    sample = DEV_DATA / "celeba-spoof-sample" / "CelebA_Spoof"
    parser.add_argument("--sample", type=Path, default=sample, help="a real CelebA-Spoof root")
    args = parser.parse_args()
    if (args.sample / "metas").is_dir():
        time_real_root(args.sample, args.repeat)

    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp) / "CelebA_Spoof"
        t0 = time.perf_counter()
        make_label_set(root, txt=args.with_txt)
        sizes = {p.name: p.stat().st_size for p in (root / "metas/intra_test").glob("*_label.*")}
        print(
            f"generated label set in {time.perf_counter() - t0:.1f} s: "
            + ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in sorted(sizes.items()))
        )
        gc.collect()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        reads, totals, cpus = [], [], []
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            result, t_read, by_split, by_subject = read_and_index(root)
            totals.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            reads.append(t_read - t0)
            del result, by_split, by_subject
            gc.collect()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        tracemalloc.start()
        result, _, by_split, by_subject = read_and_index(root)
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    c = result.counts
    print(f"entries: {c['entries_train']:,} train + {c['entries_test']:,} test")
    print(
        f"samples: train {c['train']:,} ({c['train_subjects']:,} subjects), val {c['val']:,} "
        f"({c['val_subjects']:,}), test {c['test']:,} ({c['test_subjects']:,}); "
        f"skipped {c['skipped']}"
    )
    print(
        f"defects counted: label_folder_disagree {c['label_folder_disagree']:,}, "
        f"subjects_in_train_and_test {c['subjects_in_train_and_test']}, png {c['images_png']:,}"
    )
    print(
        f"read+validate+split: median {statistics.median(reads):.2f} s "
        f"(runs: {', '.join(f'{t:.2f}' for t in reads)})"
    )
    print(
        f"read+validate+split+index: median {statistics.median(totals):.2f} s "
        f"(runs: {', '.join(f'{t:.2f}' for t in totals)})"
    )
    print(
        f"read+validate+split+index CPU time: median {statistics.median(cpus):.2f} s "
        f"(runs: {', '.join(f'{t:.2f}' for t in cpus)}; wall exceeds CPU when cores are shared)"
    )
    print(
        f"tracemalloc: peak {peak / 2**20:.0f} MiB, held after read {current / 2**20:.0f} MiB "
        f"({current / len(result.samples):.0f} B/sample)"
    )
    print(
        f"ru_maxrss: {rss_before:.0f} MiB before reading, {rss_after:.0f} MiB after "
        f"(+{rss_after - rss_before:.0f} MiB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
