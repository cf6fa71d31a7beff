"""The ``silero`` backend: Silero VAD v6 as ONNX on onnxruntime; no torch.

The model file is the one faster-whisper ships inside its wheel
(``faster_whisper/assets/silero_vad_v6.onnx``), found without importing faster-whisper
(which would load CTranslate2). Pass ``model_path`` to use another copy of the same
model. Both packages come with the ``vad`` extra.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissingDependencyError
from .backend import Frames, Probabilities

__all__ = ["SileroVad", "bundled_model_path"]

_MODEL_NAME = "silero_vad_v6.onnx"
_CONTEXT = 64  # samples of the previous frame the model sees before each frame
# Frames per session.run (256 = 8 s). A run's buffers grow with its frames, and speech
# detection runs beside the Whisper model: a 2-minute chunk in one call peaked 103 MiB
# above the session, in 256-frame calls 25 MiB (measured with onnxruntime's arena on),
# at the same speed and with the same probabilities.
_BATCH = 256


def bundled_model_path() -> Path:
    """Where the installed faster-whisper wheel keeps the Silero VAD v6 model.

    Raises:
        MissingDependencyError: faster-whisper (or its model file) is not installed.
    """
    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("faster-whisper", "vad")
    for location in spec.submodule_search_locations:
        path = Path(location) / "assets" / _MODEL_NAME
        if path.is_file():
            return path
    raise MissingDependencyError(f"faster-whisper (with assets/{_MODEL_NAME})", "vad")


class SileroVad:
    """Silero VAD v6 speech probabilities for 32 ms frames (512 samples at 16 kHz).

    The LSTM state and the 64-sample context carry over from chunk to chunk, so a
    stream scores the same however it is chunked.

    Args:
        model_path: the ONNX file; default :func:`bundled_model_path`.
        threads: onnxruntime intra-op threads (1 leaves the other cores to decoding).

    Raises:
        MissingDependencyError: onnxruntime or the model file is missing.
    """

    name = "silero"
    frame_samples = 512

    def __init__(self, *, model_path: str | Path | None = None, threads: int = 1) -> None:
        try:
            import onnxruntime
        except ImportError as exc:
            raise MissingDependencyError("onnxruntime", "vad") from exc
        path = Path(model_path) if model_path is not None else bundled_model_path()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 4
        # onnxruntime's CPU arena keeps the largest buffers a run ever needed for the
        # life of the session: 8 MB held beside the Whisper model for the whole job.
        # Without it each run's buffers are freed; the speed and the probabilities are
        # the same (faster-whisper's own Silero session turns it off too).
        options.enable_cpu_mem_arena = False
        self._session: Any = onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.model_path = path
        self.reset()

    def reset(self) -> None:
        """Zero the recurrent state and the context."""
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(_CONTEXT, dtype=np.float32)

    def probabilities(self, frames: Frames) -> Probabilities:
        """The model's speech probability for each frame."""
        n = len(frames)
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        batch = np.empty((n, _CONTEXT + self.frame_samples), dtype=np.float32)
        batch[:, _CONTEXT:] = frames
        batch[0, :_CONTEXT] = self._context
        batch[1:, :_CONTEXT] = frames[:-1, -_CONTEXT:]
        self._context = np.array(frames[-1, -_CONTEXT:], dtype=np.float32)
        out = np.empty(n, dtype=np.float32)
        for lo in range(0, n, _BATCH):
            probs, self._h, self._c = self._session.run(
                None, {"input": batch[lo : lo + _BATCH], "h": self._h, "c": self._c}
            )
            out[lo : lo + _BATCH] = np.asarray(probs, dtype=np.float32).reshape(-1)
        return out
