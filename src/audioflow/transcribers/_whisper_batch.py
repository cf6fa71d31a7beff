"""faster-whisper's batched pipeline, with one encoder pass per batch and a beam only
where the greedy answer is unsure.

Language: :class:`faster_whisper.BatchedInferencePipeline` asked to detect the
language runs an extra encoder pass over the first 30 s before it encodes the batch —
on CPU that pass is about a fifth of the whole call. The windows' own encoder output
already holds the answer, so :class:`WindowPipeline` encodes once, reads one language
per window from it (``ctranslate2.models.Whisper.detect_language`` is a single decoder
step) and decodes each window with its own language token, as faster-whisper's
``multilingual=True`` does. The alignment and word splitting that follow use the
tokenizer's language, so the tokenizer is switched to the batch's most common language.
A window in another language still gets its own language token for decoding; only its
word alignment is done with the majority's start sequence — the same trade
faster-whisper makes in multilingual mode.

Decoding: with ``beam_below`` set, every window is first decoded greedily (one
hypothesis instead of ``beam_size``); a window whose greedy text has an average token
log probability below ``beam_below`` is decoded again with the beam, and the beam's
answer replaces it. On clear speech most windows stop after the
greedy pass; hard audio (noise, telephone, accents) gets the beam it needs.
``docs/pipeline.md`` has the measurements.

Imported only from the worker thread, after faster-whisper is known to be installed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import ctranslate2
import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel

__all__ = ["WindowPipeline"]


class WindowPipeline(BatchedInferencePipeline):  # type: ignore[misc]
    """A one-call pipeline; ``languages`` holds each batch item's language code, in order.

    Args:
        model: the loaded model.
        detect_language: read each window's language from the encoder output; the
            ``language`` given to :meth:`transcribe` is then only a placeholder.
        beam_below: decode greedily first and use the beam only for windows whose greedy
            average token log probability is below this; ``None`` decodes every window
            with the beam (faster-whisper's way). Needs the encoder output on the CPU;
            elsewhere every window gets the beam.
        encode_batch: most windows one encoder call takes (``None``: the whole batch);
            the decoder still takes the whole batch.
    """

    def __init__(
        self,
        model: WhisperModel,
        *,
        detect_language: bool,
        beam_below: float | None = None,
        encode_batch: int | None = None,
    ) -> None:
        super().__init__(model)
        self.detect_language = detect_language and bool(model.model.is_multilingual)
        self.beam_below = beam_below
        self.encode_batch = encode_batch
        self.languages: list[str] = []
        self.probabilities: list[float | None] = []  # of each detected language
        self.beamed = 0  # windows decoded again with the beam, over all batches

    def generate_segment_batched(
        self, features: np.ndarray[Any, Any], tokenizer: Any, options: Any
    ) -> tuple[Any, list[dict[str, Any]]]:
        model = self.model
        encoder_output = self._encode(features)
        if self.detect_language:
            found = model.model.detect_language(encoder_output)
            detected = [langs[0][0] for langs in found]
            sureness = [float(langs[0][1]) for langs in found]
            # most_common keeps first-seen order among ties: the earliest window wins.
            primary = Counter(detected).most_common(1)[0][0]
            tokenizer.language = tokenizer.tokenizer.token_to_id(primary)
            tokenizer.language_code = primary[2:-2]  # "<|en|>" -> "en"

        prompt = model.get_prompt(
            tokenizer,
            previous_tokens=(
                tokenizer.encode(options.initial_prompt)
                if options.initial_prompt is not None
                else []
            ),
            without_timestamps=options.without_timestamps,
            hotwords=options.hotwords,
        )
        prompts = [prompt.copy() for _ in range(len(features))]
        if self.detect_language:  # each window decodes with its own language token
            at = prompt.index(tokenizer.language)
            for window_prompt, token in zip(prompts, detected, strict=True):
                window_prompt[at] = tokenizer.tokenizer.token_to_id(token)
        max_length = model.max_length
        if options.max_new_tokens is not None:
            max_length = min(len(prompt) + options.max_new_tokens, model.max_length)

        def decode(memory: Any, batch: list[list[int]], beam_size: int) -> list[dict[str, Any]]:
            results = model.model.generate(
                memory,
                batch,
                beam_size=beam_size,
                patience=options.patience,
                length_penalty=options.length_penalty,
                max_length=max_length,
                suppress_blank=options.suppress_blank,
                suppress_tokens=options.suppress_tokens,
                return_scores=True,
                return_no_speech_prob=True,
                sampling_temperature=options.temperatures[0],
                repetition_penalty=options.repetition_penalty,
                no_repeat_ngram_size=options.no_repeat_ngram_size,
            )
            out = []
            for result in results:
                seq_len = len(result.sequences_ids[0])
                cum_logprob = result.scores[0] * (seq_len**options.length_penalty)
                out.append(
                    {
                        "avg_logprob": cum_logprob / (seq_len + 1),
                        "no_speech_prob": result.no_speech_prob,
                        "tokens": result.sequences_ids[0],
                    }
                )
            return out

        gated = (
            self.beam_below is not None
            and options.beam_size > 1
            and encoder_output.device == "cpu"
        )
        if not gated:
            output = decode(encoder_output, prompts, options.beam_size)
        else:
            output = decode(encoder_output, prompts, 1)
            unsure = [i for i, o in enumerate(output) if o["avg_logprob"] < self.beam_below]
            if unsure:
                memory = encoder_output
                if len(unsure) < len(output):
                    memory = ctranslate2.StorageView.from_array(
                        np.ascontiguousarray(np.asarray(encoder_output)[unsure])
                    )
                again = decode(memory, [prompts[i] for i in unsure], options.beam_size)
                for i, o in zip(unsure, again, strict=True):
                    output[i] = o
                self.beamed += len(unsure)
        if self.detect_language:
            self.languages += [token[2:-2] for token in detected]
            self.probabilities += sureness
        else:  # an English-only model's prompt has no language token at all
            self.languages += [tokenizer.language_code] * len(output)
            self.probabilities += [None] * len(output)
        return encoder_output, output

    def _encode(self, features: np.ndarray[Any, Any]) -> Any:
        """The batch's encoder output, computed ``encode_batch`` windows at a time."""
        step = self.encode_batch
        if step is None or len(features) <= step:
            return self.model.encode(features)
        # The encoder's self-attention holds heads x 1500 x 1500 floats per window
        # (72 MB for Whisper-base): encoding a few windows at a time bounds that peak
        # while the decoder still gets the whole batch. On a GPU the copy through host
        # memory would cost more than it saves; there the batch is encoded whole.
        if self.model.model.device != "cpu":
            return self.model.encode(features)
        parts = [
            np.asarray(self.model.encode(features[i : i + step]))
            for i in range(0, len(features), step)
        ]
        return ctranslate2.StorageView.from_array(np.ascontiguousarray(np.concatenate(parts)))
