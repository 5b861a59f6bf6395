"""What hiding mediapipe's log lines costs: time from building a face detector (or face mesh) to
its first result.

Three ways, interleaved in one process (the first graph of the process, which loads TF Lite, is
built before timing starts), each timed to the end of its first run on a blank 64x64 image:
- `mediapipe`: the solution built and run directly, as facepad did before it hid the lines;
- `verbose`: facepad's FaceDetector / FaceMesh with FACEPAD_VERBOSE=1 (no capture; it still
  waits until the graph's calculators are open before returning);
- `quiet`: the default, fd 2 captured while the graph is built and opened.

Prints the median milliseconds and the ratio to `mediapipe` (the lines of the first two ways go
to stderr).

    .venv/bin/python benchmarks/quiet.py [--rounds 15] 2>/dev/null
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from facepad.data import faces

BLANK = np.zeros((64, 64, 3), np.uint8)


def direct(kind: str) -> None:
    mp = faces._mediapipe()
    if kind == "detector":
        graph = mp.solutions.face_detection.FaceDetection(model_selection=0)
    else:
        graph = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1)
    graph.process(BLANK)
    graph.close()


def facepad(kind: str, verbose: bool) -> None:
    os.environ[faces.VERBOSE_ENV] = "1" if verbose else "0"
    if kind == "detector":
        with faces.FaceDetector() as detector:
            detector.detect(BLANK)
    else:
        with faces.FaceMesh() as mesh:
            mesh.landmarks(BLANK)


WAYS = {
    "mediapipe": direct,
    "verbose": lambda kind: facepad(kind, verbose=True),
    "quiet": lambda kind: facepad(kind, verbose=False),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    for kind in ("detector", "mesh"):
        facepad(kind, verbose=False)  # TF Lite loaded, first-graph costs paid
        times: dict[str, list[float]] = {way: [] for way in WAYS}
        for _ in range(args.rounds):
            for way, run in WAYS.items():
                start = time.perf_counter()
                run(kind)
                times[way].append(time.perf_counter() - start)
        base = statistics.median(times["mediapipe"])
        for way, values in times.items():
            median = statistics.median(values)
            print(f"{kind:8s} {way:9s} median {1000 * median:7.2f} ms  x{median / base:5.2f}")


if __name__ == "__main__":
    main()
