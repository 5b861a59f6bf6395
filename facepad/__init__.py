"""facepad: face presentation attack detection, from raw dataset to deployed model."""

__version__ = "0.1.0"
