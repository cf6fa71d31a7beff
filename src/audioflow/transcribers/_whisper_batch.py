"""faster-whisper's batched pipeline, detecting the language from the batch it encodes.

:class:`faster_whisper.BatchedInferencePipeline` asked to detect the language runs an
extra encoder pass over the first 30 s before it encodes the batch — on CPU that pass is
about a fifth of the whole call. The windows' own encoder output already holds the
answer, so :class:`WindowPipeline` encodes once, reads one language per window from it
(``ctranslate2.models.Whisper.detect_language`` is a single decoder step) and decodes
each window with its own language token, as faster-whisper's ``multilingual=True`` does.

The alignment and word splitting that follow use the tokenizer's language, so the
tokenizer is switched to the batch's most common language. A window in another language
still gets its own language token for decoding; only its word alignment is done with
the majority's start sequence — the same trade faster-whisper makes in multilingual
mode.

Imported only from the worker thread, after faster-whisper is known to be installed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel

__all__ = ["WindowPipeline"]


class WindowPipeline(BatchedInferencePipeline):  # type: ignore[misc]
    """A one-call pipeline; ``languages`` holds each batch item's language code, in order.

    Args:
        model: the loaded model.
        detect_language: read each window's language from the encoder output; the
            ``language`` given to :meth:`transcribe` is then only a placeholder.
    """

    def __init__(self, model: WhisperModel, *, detect_language: bool) -> None:
        super().__init__(model)
        self.detect_language = detect_language and bool(model.model.is_multilingual)
        self.languages: list[str] = []

    def generate_segment_batched(
        self, features: np.ndarray[Any, Any], tokenizer: Any, options: Any
    ) -> tuple[Any, list[dict[str, Any]]]:
        if not self.detect_language:
            encoder_output, output = super().generate_segment_batched(features, tokenizer, options)
            self.languages += [tokenizer.language_code] * len(output)
            return encoder_output, output

        model = self.model
        encoder_output = model.encode(features)
        detected = [langs[0][0] for langs in model.model.detect_language(encoder_output)]
        # most_common keeps first-seen order among ties: the earliest window wins a tie.
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
        max_length = model.max_length
        if options.max_new_tokens is not None:
            max_length = min(len(prompt) + options.max_new_tokens, model.max_length)
        at = prompt.index(tokenizer.language)
        prompts = []
        for token in detected:
            prompts.append(prompt.copy())
            prompts[-1][at] = tokenizer.tokenizer.token_to_id(token)

        results = model.model.generate(
            encoder_output,
            prompts,
            beam_size=options.beam_size,
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
        output = []
        for result in results:
            seq_len = len(result.sequences_ids[0])
            cum_logprob = result.scores[0] * (seq_len**options.length_penalty)
            output.append(
                {
                    "avg_logprob": cum_logprob / (seq_len + 1),
                    "no_speech_prob": result.no_speech_prob,
                    "tokens": result.sequences_ids[0],
                }
            )
        self.languages += [token[2:-2] for token in detected]
        return encoder_output, output
