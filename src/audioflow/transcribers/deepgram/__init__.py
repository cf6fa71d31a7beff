"""``DeepgramTranscriber``: windows uploaded to Deepgram's pre-recorded API.

Needs the ``deepgram`` extra (``pip install 'audioflow[deepgram]'``: deepgram-sdk 7.x).
Each window is encoded in memory (FLAC, or Opus in Ogg) and sent with
``AsyncDeepgramClient.listen.v1.media.transcribe_file``; the JSON is read by
:meth:`audioflow.Transcript.from_deepgram`. Windows hold speech only (the pipeline
cut the silence), so Deepgram bills speech only.

Retries are ours, not the SDK's (it is told ``max_retries=0``): the SDK sleeps with
``asyncio.sleep`` (which does not run on trio) and does not count attempts for us.

Everything Deepgram lives in this package: the transcriber (``_transcriber``), the
upload encoding (``_upload``), the mapping of its errors (``_errors``) and the reading
of its responses into a :class:`~audioflow.Transcript` (``_response``, behind
:meth:`audioflow.Transcript.from_deepgram`, which needs no extra). The fake server for
tests is :class:`audioflow.testing.FakeDeepgramServer`.
"""

from __future__ import annotations

from ._transcriber import DeepgramTranscriber

__all__ = ["DeepgramTranscriber"]
