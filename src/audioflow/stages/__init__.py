"""Pipeline stages: the stage contract, ``Decode``, ``Quality``, ``DetectSpeech`` and
``Transcribe``.

See :mod:`audioflow.stages.base` for the contract every stage implements.
"""

from __future__ import annotations

from .base import FunctionStage, ReportCallback, Stage, StageContext, function_stage, run_stages
from .decode import Decode
from .quality import Quality, QualityMeter
from .transcribe import Transcribe, WindowPacker
from .vad import DetectSpeech

__all__ = [
    "Decode",
    "DetectSpeech",
    "FunctionStage",
    "Quality",
    "QualityMeter",
    "ReportCallback",
    "Stage",
    "StageContext",
    "Transcribe",
    "WindowPacker",
    "function_stage",
    "run_stages",
]
