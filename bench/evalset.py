"""Build a real-speech evaluation set (recorded human speech + reference text), never committed.

    python bench/evalset.py [--cache DIR] [--out DIR]

Defaults: ``--cache ~/.cache/audioflow/evalset-src`` (downloaded packages and the files
taken out of them), ``--out ~/.cache/audioflow/evalset`` (the assembled set). Downloads
already in the cache are reused, so a second run fetches nothing. Nothing this script
fetches or writes belongs in the repository: only the script is committed.

Sources -- every one a recording of people speaking (nothing synthesized), shipped by
a package of a registry this project already uses:

* Debian ``asterisk-core-sounds-en-wav`` 1.6.1-1 (``apt-get download`` + ``dpkg -x``):
  the Asterisk PBX prompts, ``/usr/share/asterisk/sounds/en_US_f_Allison/**.wav``, read by
  one professional female speaker (Allison Smith), 8 kHz 16-bit mono telephone audio;
  their text is in ``asterisk-core-sounds-en`` 1.6.1-1,
  ``/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz`` (lines
  ``name: text``; ``[...]``, ``<...>`` and ``(...)`` are tones and notes, not speech).
  Licence: CC-BY-SA-3.0 (Digium, Inc.; voice of Allison Smith).
* PyPI ``pyannote.audio`` 4.0.7 wheel: ``pyannote/audio/sample/sample.wav`` (30 s,
  16 kHz, a phone call between two women, Diane and Sheila) with ``sample.stm`` (the
  words of each segment). Licence: MIT (pyannote.audio).
* PyPI ``pocketsphinx`` 5.1.1 sdist: ``test/data/librivox/sense_and_sensibility_01_
  austen_64kb-{0870,0880,0890,0920,0930}.wav`` + ``.txt`` (16 kHz, one LibriVox reader).
  Licence: pocketsphinx is BSD-2-Clause; the LibriVox recording is public domain.
* PyPI ``pywhispercpp`` 1.5.1 sdist: ``whisper.cpp/samples/jfk.wav`` (11 s of
  J. F. Kennedy's 1961 inaugural address). Licence: whisper.cpp is MIT; the speech is a
  US government work, public domain.

Packages come from the registries only: Debian through ``apt-get download`` (with
``apt-get update`` once if that fails), PyPI through its JSON API (the file's URL and
its sha256 digest, checked after download).

The set (16 kHz mono; everything resampled with PyAV):

``allison.{wav,mp3,mp4}``
    About 5 minutes of Asterisk prompts that are sentences (>= 2 s, >= 4 words, with an
    unambiguous reading: no multi-digit numbers, no ``#``/``*``), picked by a seeded
    shuffle of the sorted names, each followed by a 0.4-0.9 s pause (digital silence).
    The prompts keep their telephone band (8 kHz source, so nothing above 4 kHz): they
    are only resampled to 16 kHz, which every container here then carries. The mp4 has
    AAC audio and a small grey H.264 video track.
``voices.{wav,mp3}``
    Several speakers: the pyannote call (its speech, from just before the first STM
    segment to the end, kept continuous; STM segments closer than 0.25 s are joined
    into one prompt), the five LibriVox clips and JFK, each followed by a 0.6-1.2 s
    pause.
``gaps.wav``
    12 other Asterisk sentence prompts separated by 8-15 s of non-speech that cycles
    through digital silence, white noise (RMS 0.003) and 50 Hz mains hum (with
    harmonics) plus noise: for a "no words in silence" check.

``manifest.json`` describes each written file: duration, speakers, source packages,
licence notes, ``prompts`` (``start``/``end`` = where the prompt's clip sits in the
file, its own leading/trailing silence included; ``speech_start``/``speech_end`` = the
clip trimmed to its speech by frame level, see :func:`speech_bounds` -- for the pyannote
call, the STM segment times instead; ``text`` normalized for WER with
:func:`normalize_text`, ``original`` as the source wrote it, ``source`` such as
``asterisk:agent-pass``) and ``nonspeech`` (every inserted pause or filler and its
kind). Transcripts to be scored against ``text`` should go through
:func:`normalize_text` too.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import re
import shutil
import subprocess
import sys
import tarfile
import urllib.parse
import urllib.request
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from audioflow.testing.media import AudioTrack, VideoTrack, write_media

Samples = npt.NDArray[np.float32]

RATE = 16_000
SEED = 20_240_601

ASTERISK_WAV = ("asterisk-core-sounds-en-wav", "1.6.1-1")
ASTERISK_TXT = ("asterisk-core-sounds-en", "1.6.1-1")
ASTERISK_DIR = "usr/share/asterisk/sounds/en_US_f_Allison"
ASTERISK_DOC = "usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"

PYANNOTE = ("pyannote.audio", "4.0.7", "bdist_wheel")
POCKETSPHINX = ("pocketsphinx", "5.1.1", "sdist")
PYWHISPERCPP = ("pywhispercpp", "1.5.1", "sdist")
LIBRIVOX_IDS = ("0870", "0880", "0890", "0920", "0930")
LIBRIVOX_STEM = "test/data/librivox/sense_and_sensibility_01_austen_64kb-"
JFK_TEXT = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)

LICENSE_ASTERISK = (
    "Asterisk core sounds (voice: Allison Smith), CC-BY-SA-3.0, Digium, Inc.; "
    "from Debian asterisk-core-sounds-en-wav/asterisk-core-sounds-en 1.6.1-1"
)
LICENSE_VOICES = (
    "pyannote.audio sample (MIT); pocketsphinx test data (BSD-2-Clause), LibriVox "
    "recording public domain; whisper.cpp sample (MIT), JFK inaugural address public "
    "domain (US government work)"
)


# ---------------------------------------------------------------------------- text


_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}


def number_words(n: int) -> str:
    """``n`` in English words, without "and": 2009 -> "two thousand nine"."""
    if n < 0:
        return "minus " + number_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (" " + _ONES[ones] if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return _ONES[hundreds] + " hundred" + (" " + number_words(rest) if rest else "")
    for size, name in _SCALES:
        if n >= size:
            high, rest = divmod(n, size)
            return number_words(high) + " " + name + (" " + number_words(rest) if rest else "")
    raise AssertionError(n)  # pragma: no cover


def ordinal_words(n: int) -> str:
    """21 -> "twenty first"."""
    *head, last = number_words(n).split()
    if last in _ORDINAL:
        last = _ORDINAL[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return " ".join([*head, last])


def _digits(text: str) -> str:
    return " ".join(_ONES[int(d)] for d in text)


def _money(m: re.Match[str]) -> str:
    dollars = int(m.group(1).replace(",", ""))
    words = number_words(dollars) + (" dollar" if dollars == 1 else " dollars")
    if m.group(2) and int(m.group(2)):
        cents = int(m.group(2))
        words += " " + number_words(cents) + (" cent" if cents == 1 else " cents")
    return f" {words} "


_TAGS = re.compile(r"\[[^\]]*\]|<[^>]*>|\([^)]*\)|\{[^}]*\}")
_MONEY = re.compile(r"\$\s?(\d[\d,]*)(?:\.(\d\d))?\b")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s?%")
_ORDINAL_NUM = re.compile(r"\b(\d+)(?:st|nd|rd|th)\b", re.IGNORECASE)
_DECIMAL = re.compile(r"\b(\d+)\.(\d+)\b")
_INTEGER = re.compile(r"\b\d{1,3}(?:,\d{3})+\b|\d+")
_SYMBOLS = {"&": " and ", "@": " at ", "%": " percent ", "+": " plus ", "=": " equals "}


def normalize_text(text: str) -> str:
    """Text for WER: tags dropped, numbers spelled out, lower case, no punctuation.

    ``[beep]``, ``<beep>``, ``(notes)`` go; "$5" -> "five dollars", "5%" -> "five
    percent", "21st" -> "twenty first", "28.8" -> "twenty eight point eight", "2009" ->
    "two thousand nine"; hyphens and slashes split words; apostrophes inside words stay
    ("didn't"), all other punctuation goes.
    """
    text = _TAGS.sub(" ", text)
    text = _MONEY.sub(_money, text)
    text = _PERCENT.sub(lambda m: f" {m.group(1)} percent ", text)
    text = _ORDINAL_NUM.sub(lambda m: f" {ordinal_words(int(m.group(1)))} ", text)
    text = _DECIMAL.sub(
        lambda m: f" {number_words(int(m.group(1)))} point {_digits(m.group(2))} ", text
    )
    text = _INTEGER.sub(lambda m: f" {number_words(int(m.group(0).replace(',', '')))} ", text)
    for symbol, words in _SYMBOLS.items():
        text = text.replace(symbol, words)
    text = text.lower().replace("\u2019", "'")
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    words = (w.strip("'") for w in text.split())
    return " ".join(w for w in words if w)


# ---------------------------------------------------------------------------- fetching


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def fetch_deb(package: str, version: str, cache: Path) -> Path:
    """``apt-get download package=version`` into ``cache/deb``, ``dpkg -x`` it; the root."""
    debs = cache / "deb"
    debs.mkdir(parents=True, exist_ok=True)
    root = cache / "root" / package
    if (root / ".done").exists():
        return root
    found = sorted(debs.glob(f"{package}_{version.replace(':', '%3a')}_*.deb"))
    if not found:
        _log(f"apt-get download {package}={version}")
        cmd = ["apt-get", "download", f"{package}={version}"]
        if subprocess.run(cmd, cwd=debs, check=False).returncode != 0:
            _log("apt-get download failed; apt-get update, then once more")
            subprocess.run(["apt-get", "update"], check=True)
            subprocess.run(cmd, cwd=debs, check=True)
        found = sorted(debs.glob(f"{package}_*.deb"))
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    subprocess.run(["dpkg", "-x", str(found[0]), str(root)], check=True)
    (root / ".done").write_text(found[0].name)
    return root


def fetch_pypi(name: str, version: str, kind: str, cache: Path) -> Path:
    """The ``kind`` ("sdist" or "bdist_wheel") file of ``name==version`` from PyPI."""
    folder = cache / "pypi"
    folder.mkdir(parents=True, exist_ok=True)
    # The project's JSON lists every release; some mirrors lack the per-version page.
    api = f"https://pypi.org/pypi/{name}/json"
    index = folder / f"{name}.json"
    if not index.exists() or version not in json.loads(index.read_text())["releases"]:
        with urllib.request.urlopen(api, timeout=60) as response:
            index.write_bytes(response.read())
    releases = json.loads(index.read_text())["releases"]
    files = [f for f in releases[version] if f["packagetype"] == kind]
    if kind == "bdist_wheel":
        files = [f for f in files if f["filename"].endswith("-none-any.whl")] or files
    info = files[0]
    target = folder / info["filename"]
    if target.exists():
        return target
    url = urllib.parse.urljoin(api, info["url"])  # PyPI may answer with a relative URL
    _log(f"download {info['filename']} ({info['size'] / 1e6:.1f} MB)")
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=120) as response, partial.open("wb") as out:
        while chunk := response.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != info["digests"]["sha256"]:
        partial.unlink()
        raise RuntimeError(f"sha256 mismatch for {info['filename']}")
    partial.rename(target)
    return target


def extract(archive: Path, members: list[str], into: Path) -> dict[str, Path]:
    """Take ``members`` (paths inside the archive, under its top folder for an sdist)."""
    out = {m: into / m for m in members}
    missing = [m for m, p in out.items() if not p.exists()]
    if not missing:
        return out
    into.mkdir(parents=True, exist_ok=True)
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zf:
            for m in missing:
                out[m].parent.mkdir(parents=True, exist_ok=True)
                out[m].write_bytes(zf.read(m))
    else:
        with tarfile.open(archive) as tf:
            top = tf.next()
            assert top is not None
            prefix = top.name.split("/")[0] + "/"
            for m in missing:
                source = tf.extractfile(prefix + m)
                assert source is not None, m
                out[m].parent.mkdir(parents=True, exist_ok=True)
                out[m].write_bytes(source.read())
    return out


# ---------------------------------------------------------------------------- audio


def load(path: Path) -> Samples:
    """Decode the first audio stream with PyAV, as 16 kHz mono float32."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
    chunks: list[Samples] = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
    for out in resampler.resample(None):
        chunks.append(out.to_ndarray().reshape(-1))
    return np.concatenate(chunks).astype(np.float32)


def speech_bounds(clip: Samples, floor: float = 0.004) -> tuple[int, int]:
    """First and past-last sample of the clip's speech, from 10 ms frame RMS levels.

    Hysteresis, so neither a clip's hiss nor the applause after JFK's last word counts:
    the speech core is where the 50 ms smoothed level exceeds 20 % of its maximum; its
    edges then extend while frames stay above ``max(floor, 2 % of that maximum, 2 x the
    clip's noise floor)`` (noise floor = 10th percentile of the frame levels).
    """
    hop = RATE // 100
    n = len(clip) // hop
    if n < 5:
        return 0, len(clip)
    rms = np.sqrt(np.mean(clip[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1))
    smooth = np.convolve(rms, np.ones(5) / 5, mode="same")
    peak = float(smooth.max())
    core = np.flatnonzero(smooth > max(floor, 0.2 * peak))
    if core.size == 0:
        return 0, len(clip)
    low = max(floor, 0.02 * peak, 2 * float(np.percentile(rms, 10)))
    first, last = int(core[0]), int(core[-1])
    while first > 0 and rms[first - 1] > low:
        first -= 1
    while last < n - 1 and rms[last + 1] > low:
        last += 1
    return first * hop, min(len(clip), (last + 1) * hop)


def hum(seconds: float, seed: int) -> Samples:
    """50 Hz mains hum with a few harmonics, plus low noise."""
    t = np.arange(round(seconds * RATE)) / RATE
    wave = (
        0.02 * np.sin(2 * np.pi * 50 * t)
        + 0.008 * np.sin(2 * np.pi * 100 * t + 0.3)
        + 0.005 * np.sin(2 * np.pi * 150 * t + 1.1)
        + 0.002 * np.sin(2 * np.pi * 250 * t + 2.0)
    )
    rng = np.random.default_rng(seed)
    return (wave + rng.standard_normal(t.size) * 0.002).astype(np.float32)


def filler(kind: str, seconds: float, seed: int) -> Samples:
    if kind == "silence":
        return np.zeros(round(seconds * RATE), np.float32)
    if kind == "noise":
        rng = np.random.default_rng(seed)
        return (rng.standard_normal(round(seconds * RATE)) * 0.003).astype(np.float32)
    if kind == "hum":
        return hum(seconds, seed)
    raise ValueError(kind)


# ---------------------------------------------------------------------------- assembly


@dataclass
class Prompt:
    start: float
    end: float
    speech_start: float
    speech_end: float
    text: str
    original: str
    source: str
    speakers: list[str]


@dataclass
class Clip:
    """A piece of recorded speech with its reference; ``parts`` split a longer piece."""

    samples: Samples
    original: str
    source: str
    speakers: list[str]
    # For a clip that holds several prompts (the pyannote call): (start, end,
    # speech_start, speech_end, original, source, speakers), seconds into the clip.
    parts: list[tuple[float, float, float, float, str, str, list[str]]] = field(
        default_factory=list
    )


class Assembly:
    """Appends clips and pauses, remembering where each prompt lands."""

    def __init__(self) -> None:
        self.chunks: list[Samples] = []
        self.length = 0
        self.prompts: list[Prompt] = []
        self.nonspeech: list[dict[str, Any]] = []

    def _append(self, samples: Samples) -> float:
        at = self.length / RATE
        self.chunks.append(samples.astype(np.float32))
        self.length += len(samples)
        return at

    def clip(self, clip: Clip) -> None:
        at = self._append(clip.samples)
        if clip.parts:
            for start, end, s_start, s_end, original, source, speakers in clip.parts:
                self.prompts.append(
                    Prompt(
                        *(round(at + x, 3) for x in (start, end, s_start, s_end)),
                        text=normalize_text(original),
                        original=original,
                        source=source,
                        speakers=speakers,
                    )
                )
            return
        first, last = speech_bounds(clip.samples)
        self.prompts.append(
            Prompt(
                start=round(at, 3),
                end=round(at + len(clip.samples) / RATE, 3),
                speech_start=round(at + first / RATE, 3),
                speech_end=round(at + last / RATE, 3),
                text=normalize_text(clip.original),
                original=clip.original,
                source=clip.source,
                speakers=clip.speakers,
            )
        )

    def pause(self, seconds: float, kind: str = "silence", seed: int = 0) -> None:
        at = self._append(filler(kind, seconds, seed))
        end = self.length / RATE
        self.nonspeech.append({"start": round(at, 3), "end": round(end, 3), "kind": kind})

    @property
    def samples(self) -> Samples:
        return np.clip(np.concatenate(self.chunks), -1.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------- sources


def asterisk_prompts(cache: Path) -> list[Clip]:
    """Every Asterisk prompt that is a sentence read unambiguously, sorted by name."""
    sounds = fetch_deb(*ASTERISK_WAV, cache) / ASTERISK_DIR
    doc = fetch_deb(*ASTERISK_TXT, cache) / ASTERISK_DOC
    clips: list[Clip] = []
    with gzip.open(doc, "rt", encoding="utf-8", errors="replace") as lines:
        entries = [
            line.split(":", 1)
            for line in (raw.strip() for raw in lines)
            if line and not line.startswith(";") and ":" in line
        ]
    for name, raw_text in sorted(entries):
        text = raw_text.strip()
        path = sounds / f"{name.strip()}.wav"
        if not path.exists() or not normalize_text(text):
            continue  # the one file with no audio; tones and notes
        if re.search(r"[#*]|\d{2,}|\d\.\d", text) or len(normalize_text(text).split()) < 4:
            continue  # "#"/"*"/"1234" have more than one reading; too short
        samples = load(path)
        if len(samples) < 2 * RATE:
            continue
        clips.append(Clip(samples, text, f"asterisk:{name.strip()}", ["asterisk:allison"]))
    return clips


def pyannote_call(cache: Path) -> Clip:
    """The pyannote sample's speech as one continuous clip; STM segments as its parts."""
    wheel = fetch_pypi(*PYANNOTE, cache)
    files = extract(
        wheel,
        ["pyannote/audio/sample/sample.wav", "pyannote/audio/sample/sample.stm"],
        cache / "src" / "pyannote.audio",
    )
    audio = load(files["pyannote/audio/sample/sample.wav"])
    segments: list[tuple[float, float, str, str]] = []
    for line in files["pyannote/audio/sample/sample.stm"].read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6:
            segments.append((float(fields[3]), float(fields[4]), fields[2], fields[5]))
    # Join segments closer than 0.25 s (turns that run into each other).
    groups: list[list[tuple[float, float, str, str]]] = []
    for segment in sorted(segments):
        if groups and segment[0] - groups[-1][-1][1] < 0.25:
            groups[-1].append(segment)
        else:
            groups.append([segment])
    lead = 0.3
    offset = max(0.0, groups[0][0][0] - lead)
    total = len(audio) / RATE
    parts = []
    for i, group in enumerate(groups):
        s_start, s_end = group[0][0], group[-1][1]
        start = offset if i == 0 else (groups[i - 1][-1][1] + s_start) / 2
        end = total if i == len(groups) - 1 else (s_end + groups[i + 1][0][0]) / 2
        speakers = list(dict.fromkeys(f"pyannote:{g[2]}" for g in group))
        parts.append(
            (
                start - offset,
                end - offset,
                s_start - offset,
                min(s_end, total) - offset,
                " ".join(g[3] for g in group),
                f"pyannote:sample@{s_start:.2f}-{s_end:.2f}",
                speakers,
            )
        )
    speakers = list(dict.fromkeys(s for p in parts for s in p[6]))
    clip_samples = audio[round(offset * RATE) :]
    return Clip(clip_samples, " ".join(p[4] for p in parts), "pyannote:sample", speakers, parts)


def librivox_clips(cache: Path) -> list[Clip]:
    sdist = fetch_pypi(*POCKETSPHINX, cache)
    members = [f"{LIBRIVOX_STEM}{i}.{ext}" for i in LIBRIVOX_IDS for ext in ("wav", "txt")]
    files = extract(sdist, members, cache / "src" / "pocketsphinx")
    return [
        Clip(
            load(files[f"{LIBRIVOX_STEM}{i}.wav"]),
            " ".join(files[f"{LIBRIVOX_STEM}{i}.txt"].read_text().split()),
            f"librivox:sense_and_sensibility_01-{i}",
            ["librivox:sense_and_sensibility_reader"],
        )
        for i in LIBRIVOX_IDS
    ]


def jfk_clip(cache: Path) -> Clip:
    sdist = fetch_pypi(*PYWHISPERCPP, cache)
    member = "whisper.cpp/samples/jfk.wav"
    files = extract(sdist, [member], cache / "src" / "pywhispercpp")
    return Clip(load(files[member]), JFK_TEXT, "whispercpp:jfk", ["jfk"])


# ---------------------------------------------------------------------------- build


def pick_allison(candidates: list[Clip]) -> tuple[list[Clip], list[Clip]]:
    """~5 minutes (clips + pauses) for ``allison``, 12 different 2-8 s ones for ``gaps``."""
    order = list(candidates)
    random.Random(SEED).shuffle(order)
    allison: list[Clip] = []
    total = 0.0
    rest: list[Clip] = []
    for clip in order:
        seconds = len(clip.samples) / RATE
        if total < 300.0 and seconds <= 20.0:
            allison.append(clip)
            total += seconds + 0.65
        else:
            rest.append(clip)
    gaps = [c for c in rest if len(c.samples) / RATE <= 8.0][:12]
    return allison, gaps


def file_entry(
    name: str,
    path: Path,
    out: Path,
    assembly: Assembly,
    packages: list[str],
    license_notes: str,
) -> dict[str, Any]:
    speakers = list(dict.fromkeys(s for p in assembly.prompts for s in p.speakers))
    return {
        "name": name,
        "path": str(path.relative_to(out)),
        "container": path.suffix.lstrip("."),
        "sample_rate": RATE,
        "duration": round(assembly.length / RATE, 3),
        "speakers": speakers,
        "source_packages": packages,
        "license_notes": license_notes,
        "prompts": [asdict(p) for p in assembly.prompts],
        "nonspeech": assembly.nonspeech,
    }


def build(cache: Path, out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    candidates = asterisk_prompts(cache)
    allison_clips, gaps_clips = pick_allison(candidates)
    rng = random.Random(SEED + 1)
    asterisk_packages = [f"debian:{p}={v}" for p, v in (ASTERISK_WAV, ASTERISK_TXT)]
    files: list[dict[str, Any]] = []

    allison = Assembly()
    allison.pause(0.5)
    for clip in allison_clips:
        allison.clip(clip)
        allison.pause(rng.uniform(0.4, 0.9))
    samples = allison.samples
    for ext in ("wav", "mp3", "mp4"):
        path = out / f"allison.{ext}"
        _log(f"write {path}")
        video = VideoTrack(seconds=len(samples) / RATE) if ext == "mp4" else None
        write_media(path, AudioTrack(samples, RATE), video=video)
        files.append(
            file_entry("allison", path, out, allison, asterisk_packages, LICENSE_ASTERISK)
        )

    voices = Assembly()
    voices.pause(0.5)
    rng = random.Random(SEED + 2)
    for clip in [pyannote_call(cache), *librivox_clips(cache), jfk_clip(cache)]:
        voices.clip(clip)
        voices.pause(rng.uniform(0.6, 1.2))
    samples = voices.samples
    voice_packages = [
        f"pypi:{PYANNOTE[0]}=={PYANNOTE[1]} (wheel)",
        f"pypi:{POCKETSPHINX[0]}=={POCKETSPHINX[1]} (sdist)",
        f"pypi:{PYWHISPERCPP[0]}=={PYWHISPERCPP[1]} (sdist)",
    ]
    for ext in ("wav", "mp3"):
        path = out / f"voices.{ext}"
        _log(f"write {path}")
        write_media(path, AudioTrack(samples, RATE))
        files.append(file_entry("voices", path, out, voices, voice_packages, LICENSE_VOICES))

    gaps = Assembly()
    rng = random.Random(SEED + 3)
    kinds = ("silence", "noise", "hum")
    gaps.pause(1.0)
    for i, clip in enumerate(gaps_clips):
        gaps.clip(clip)
        gaps.pause(rng.uniform(8.0, 15.0), kinds[i % len(kinds)], seed=SEED + i)
    path = out / "gaps.wav"
    _log(f"write {path}")
    write_media(path, AudioTrack(gaps.samples, RATE))
    files.append(file_entry("gaps", path, out, gaps, asterisk_packages, LICENSE_ASTERISK))

    manifest = {"version": 1, "files": files}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def summary(manifest: dict[str, Any]) -> None:
    total = 0.0
    seen: set[str] = set()
    print(f"{'file':<14}{'duration':>10}{'prompts':>9}{'words':>7}  speakers")
    for entry in manifest["files"]:
        words = sum(len(p["text"].split()) for p in entry["prompts"])
        print(
            f"{entry['path']:<14}{entry['duration']:>9.1f}s{len(entry['prompts']):>9}"
            f"{words:>7}  {', '.join(entry['speakers'])}"
        )
        if entry["name"] not in seen:
            seen.add(entry["name"])
            total += entry["duration"]
    print(f"distinct audio: {total / 60:.2f} min ({len(seen)} assemblies)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    home = Path.home() / ".cache" / "audioflow"
    parser.add_argument("--cache", type=Path, default=home / "evalset-src")
    parser.add_argument("--out", type=Path, default=home / "evalset")
    args = parser.parse_args()
    manifest = build(args.cache.expanduser(), args.out.expanduser())
    print(f"manifest: {args.out.expanduser() / 'manifest.json'}")
    summary(manifest)


if __name__ == "__main__":
    main()
