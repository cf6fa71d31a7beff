"""The measuring engine behind :class:`~audioflow.stages.Quality`: pure numpy, no
event loop (the stage runs it in a worker thread).

It never re-reads the file and keeps O(1) state: running sums, the peak, and two
fixed-size histograms of per-frame levels (so a 3-hour file costs the same memory as a
3-second one).

**SNR estimate.** Each 32 ms frame (512 samples at 16 kHz, Hann window) gives its power
and a noise estimate: the *median* of its periodogram bins over ln 2 (for white noise
the bins are exponentially distributed, so the median is ln 2 * the mean; tones and
formants occupy a minority of bins and barely move it). The noise floor ``N`` is a low
percentile of those per-frame estimates over the file (pauses win, minimum-statistics
style), and the signal is the mean power of the *active* frames (more than 1.8 dB above
the floor) minus the floor: ``SNR = 10*log10((P_active - N) / N)``. Digital silence is
left out of both.

**Levels** (``QualityReport.level``): ``excellent`` SNR ≥ 25 dB and score ≥ 0.8;
``good`` ≥ 15 dB and ≥ 0.6; ``fair`` ≥ 10 dB and ≥ 0.4; else ``poor``.

**Score** (0..1): 0.6 * min(SNR/30 dB, 1) + 0.15 * (1 - clipping/1 %) + 0.1 * (1 - excess
silence over 50 %) + 0.1 * min(peak/0.1, 1) + 0.05 * (1 - |DC|/0.05), each term clamped.

**Warnings**: SNR < 10 dB, silence > 50 %, clipping > 1 %, peak < 0.1 (-20 dBFS).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from ..records import QualityReport

__all__ = ["QualityMeter", "quality_level"]

_FRAME = 512
_DB_LO, _DB_HI, _DB_STEP = -160.0, 20.0, 0.1
_BINS = round((_DB_HI - _DB_LO) / _DB_STEP)
_DIGITAL_SILENCE_DB = -100.0
_ACTIVE_ABOVE_FLOOR = 1.5  # power ratio (1.8 dB): frames louder than this hold signal
_NOISE_PERCENTILE = 0.2
_SPECTRAL_STRIDE = 4  # one frame in this many gets a noise spectrum
_MAX_SNR = 100.0
# Samples measured at a time (32.8 s at 16 kHz). The Decode stage's chunks are 120 s,
# and each chunk's temporaries (a frame copy, spectra: about 15 MB) were handed back to
# the system and faulted in again on the next chunk: on a 2-hour file 219,000 page
# faults and 1.3-1.5 CPU-seconds in the thread that measures quality and detects speech;
# in blocks of this size 9,500 and 0.7-0.9 s, with the same report.
_BLOCK = 1 << 19


def quality_level(snr_db: float | None, score: float) -> str:
    """The level name for an SNR and a score (thresholds in the module docs)."""
    if snr_db is None:
        return "poor"
    for level, min_snr, min_score in (
        ("excellent", 25, 0.8),
        ("good", 15, 0.6),
        ("fair", 10, 0.4),
    ):
        if snr_db >= min_snr and score >= min_score:
            return level
    return "poor"


class QualityMeter:
    """Streaming signal-quality metrics; feed sample arrays, then call :meth:`report`.

    Args:
        silence_db: frames quieter than this (RMS, dBFS) count as silence.
        clip_level: samples at or above this magnitude count as clipped.
    """

    def __init__(self, *, silence_db: float = -50.0, clip_level: float = 0.99) -> None:
        self.silence_db = silence_db
        self.clip_level = clip_level
        self._window = np.hanning(_FRAME).astype(np.float32)
        self._noise_scale = 1.0 / (math.log(2) * float(np.sum(self._window**2)))
        self._carry = np.zeros(_FRAME, dtype=np.float32)
        self._carried = 0
        self.samples = 0
        self._sum = 0.0
        self._sum_sq = 0.0
        self._peak = 0.0
        self._clipped = 0
        self.frames = 0
        self._silent_frames = 0
        self._phase = 0  # offset of the next spectrally sampled frame
        self._noise_hist = np.zeros(_BINS, dtype=np.int64)
        self._power_hist = np.zeros(_BINS, dtype=np.int64)
        self._power_sum = np.zeros(_BINS, dtype=np.float64)

    def update(self, samples: npt.NDArray[np.float32]) -> None:
        """Account for the next run of samples (any length)."""
        x = np.asarray(samples, dtype=np.float32)
        for start in range(0, x.size, _BLOCK):
            self._update(x[start : start + _BLOCK])

    def _update(self, x: npt.NDArray[np.float32]) -> None:
        self.samples += x.size
        # Float64 accumulation (so chunking never changes the result) without a wide
        # copy. einsum, not np.dot: BLAS dot is ~20x slower on some OpenBLAS builds.
        self._sum += float(np.sum(x, dtype=np.float64))
        self._sum_sq += float(np.einsum("i,i->", x, x, dtype=np.float64))
        peak = max(float(x.max()), -float(x.min()))
        self._peak = max(self._peak, peak)
        if peak >= self.clip_level:  # most chunks have no sample near full scale
            self._clipped += int(np.count_nonzero(np.abs(x) >= self.clip_level))
        # Frames straddle chunk boundaries: finish the carried partial frame first.
        if self._carried:
            take = min(_FRAME - self._carried, x.size)
            self._carry[self._carried : self._carried + take] = x[:take]
            self._carried += take
            x = x[take:]
            if self._carried == _FRAME:
                self._frames(self._carry[np.newaxis, :])
                self._carried = 0
        whole = x.size // _FRAME * _FRAME
        if whole:
            self._frames(x[:whole].reshape(-1, _FRAME))
        rest = x.size - whole
        if rest:
            self._carry[:rest] = x[whole:]
            self._carried = rest

    def _frames(self, frames: npt.NDArray[np.float32]) -> None:
        self.frames += len(frames)
        # Per-frame power in float32 is plenty for 0.1 dB histogram bins.
        power = np.einsum("ij,ij->i", frames, frames).astype(np.float64) / frames.shape[1]
        power_db = 10 * np.log10(np.maximum(power, 1e-16))
        self._silent_frames += int(np.count_nonzero(power_db < self.silence_db))
        live = power_db >= _DIGITAL_SILENCE_DB
        if not np.any(live):
            return
        frames, power, power_db = frames[live], power[live], power_db[live]
        # The noise floor is a low percentile over the whole file, so a regular sample
        # of the frames estimates it as well as all of them at a fraction of the cost
        # (the spectra were most of this stage's time).
        sampled = frames[self._phase :: _SPECTRAL_STRIDE]
        self._phase = (self._phase - len(frames)) % _SPECTRAL_STRIDE
        if len(sampled):
            spectrum = np.abs(np.fft.rfft(sampled * self._window, axis=1)[:, 3:-1]) ** 2
            noise = np.median(spectrum, axis=1) * self._noise_scale
            self._noise_hist += np.bincount(
                _bin(10 * np.log10(np.maximum(noise, 1e-16))), minlength=_BINS
            )
        bins = _bin(power_db)
        self._power_hist += np.bincount(bins, minlength=_BINS)
        self._power_sum += np.bincount(bins, weights=power, minlength=_BINS)

    def report(self) -> QualityReport:
        """The metrics so far (partial frames at the end are in every metric but SNR)."""
        if self.samples == 0:
            return QualityReport(warnings=("no audio",))
        n = self.samples
        rms = math.sqrt(self._sum_sq / n)
        rms_dbfs = 20 * math.log10(rms) if rms > 0 else -math.inf
        peak_dbfs = 20 * math.log10(self._peak) if self._peak > 0 else -math.inf
        clipping = self._clipped / n
        silence = self._silent_frames / self.frames if self.frames else 0.0
        dc = self._sum / n
        snr = self._snr()
        score = _score(snr, clipping, silence, self._peak, dc)
        warnings = []
        if snr is not None and snr < 10:
            warnings.append(f"low SNR: {snr:.1f} dB")
        if silence > 0.5:
            warnings.append(f"mostly silence: {silence:.0%}")
        if clipping > 0.01:
            warnings.append(f"clipping: {clipping:.1%} of samples")
        if self._peak < 0.1:
            warnings.append(f"low level: peak {self._peak:.3f}")
        return QualityReport(
            snr_db=snr,
            rms_dbfs=max(rms_dbfs, -200.0),
            peak_dbfs=max(peak_dbfs, -200.0),
            clipping_ratio=clipping,
            silence_ratio=silence,
            dc_offset=dc,
            score=score,
            level=quality_level(snr, score),
            warnings=tuple(warnings),
        )

    def _snr(self) -> float | None:
        total = int(self._noise_hist.sum())
        if total == 0:
            return None
        rank = int(np.searchsorted(np.cumsum(self._noise_hist), _NOISE_PERCENTILE * total))
        noise = 10 ** (_bin_db(rank) / 10)
        active = (
            np.arange(_BINS)
            >= _bin(np.array([_bin_db(rank) + 10 * math.log10(_ACTIVE_ABOVE_FLOOR)]))[0]
        )
        count = int(self._power_hist[active].sum())
        if count == 0:
            return 0.0
        signal = float(self._power_sum[active].sum()) / count - noise
        if signal <= 0:
            return 0.0
        return min(_MAX_SNR, 10 * math.log10(signal / noise))


def _bin(db: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
    return np.clip(((db - _DB_LO) / _DB_STEP).astype(np.intp), 0, _BINS - 1)


def _bin_db(index: int) -> float:
    return _DB_LO + (index + 0.5) * _DB_STEP


def _clamp(x: float) -> float:
    return min(1.0, max(0.0, x))


def _score(snr: float | None, clipping: float, silence: float, peak: float, dc: float) -> float:
    if snr is None:
        return 0.0
    return (
        0.6 * _clamp(snr / 30)
        + 0.15 * _clamp(1 - clipping / 0.01)
        + 0.1 * _clamp(1 - max(0.0, silence - 0.5) * 2)
        + 0.1 * _clamp(peak / 0.1)
        + 0.05 * _clamp(1 - abs(dc) / 0.05)
    )
