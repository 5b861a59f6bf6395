"""The one sample record every dataset reader produces, and the attack taxonomy."""

from __future__ import annotations

from dataclasses import dataclass, field

# CelebA-Spoof spoof-type ids (label vector index 40) -> names used everywhere in facepad.
CELEBA_SPOOF_TYPES: dict[int, str] = {
    0: "live",
    1: "photo",
    2: "poster",
    3: "A4",
    4: "face_mask",
    5: "upper_body_mask",
    6: "region_mask",
    7: "PC",
    8: "pad",
    9: "phone",
    10: "3D_mask",
}
CELEBA_ILLUMINATION: dict[int, str] = {0: "live", 1: "normal", 2: "strong", 3: "back", 4: "dark"}
CELEBA_ENVIRONMENT: dict[int, str] = {0: "live", 1: "indoor", 2: "outdoor"}

LABELS = ("live", "spoof")


@dataclass
class Sample:
    """One presentation: an image and what is known about it.

    `label` is "live" (bona fide) or "spoof" (attack). `attack_type` is "live" for bona fide
    presentations, else the attack's name. `box` is (x, y, w, h) in image pixels, or None when the
    dataset gives none (then the face detector finds it). `split` is "train", "val" or "test".
    """

    path: str
    label: str
    attack_type: str
    subject: str
    split: str
    box: tuple[float, float, float, float] | None = None
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def is_live(self) -> bool:
        return self.label == "live"


@dataclass
class SkippedInput:
    """An input that was left out, and why; written to the prepare summary."""

    path: str
    reason: str


@dataclass
class ReadResult:
    """What a dataset reader returns: the samples, the inputs it left out, and counts of defects."""

    samples: list[Sample]
    skipped: list[SkippedInput] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
