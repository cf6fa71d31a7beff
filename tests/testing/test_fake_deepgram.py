"""FakeDeepgramServer: real HTTP on loopback, real decoding, Deepgram's shapes and faults."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from audioflow import Transcript
from audioflow.testing import FakeDeepgramServer, Fault
from audioflow.transcribers.deepgram._upload import encode_upload
from support.deepgram_audio import SR, bursts, expected_word_times

KEY = "fake-key-123"
SPANS = [(0.5, 1.7), (2.2, 2.8)]


@pytest.fixture
def server() -> Iterator[FakeDeepgramServer]:
    with FakeDeepgramServer(KEY) as running:
        yield running


@pytest.fixture(scope="module")
def flac() -> bytes:
    data, _ = encode_upload(bursts(3.0, SPANS), SR, "flac")
    return data


def post(
    server: FakeDeepgramServer,
    body: bytes,
    query: str = "",
    *,
    key: str | None = KEY,
    content_type: str = "audio/flac",
    chunked: bool = False,
) -> tuple[int, dict[str, str], bytes]:
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    headers = {"Content-Type": content_type}
    if key is not None:
        headers["Authorization"] = f"Token {key}"
    try:
        if chunked:
            pieces = iter([body[:1000], body[1000:5000], body[5000:]])
            conn.request("POST", f"/v1/listen{query}", body=pieces, headers=headers,
                         encode_chunked=True)  # fmt: skip
        else:
            conn.request("POST", f"/v1/listen{query}", body=body, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def words_of(payload: dict[str, Any]) -> list[dict[str, Any]]:
    words: list[dict[str, Any]] = payload["results"]["channels"][0]["alternatives"][0]["words"]
    return words


def test_words_land_where_the_audio_is_not_silent(server: FakeDeepgramServer, flac: bytes) -> None:
    status, _, body = post(server, flac, "?model=nova-3")
    assert status == 200
    payload = json.loads(body)
    assert payload["metadata"]["duration"] == pytest.approx(3.0)
    assert payload["metadata"]["model_info"]
    times = [x for w in words_of(payload) for x in (w["start"], w["end"])]
    expected = [x for span in expected_word_times(SPANS) for t in span for x in t]
    assert times == pytest.approx(expected)
    assert [w["word"] for w in words_of(payload)] == ["word0", "word1", "word2"]
    # No feature asked for: no punctuation, speakers, utterances or paragraphs.
    assert all("punctuated_word" not in w and "speaker" not in w for w in words_of(payload))
    assert "utterances" not in payload["results"]
    assert "paragraphs" not in payload["results"]["channels"][0]["alternatives"][0]


def test_requests_are_recorded_with_the_key_redacted(
    server: FakeDeepgramServer, flac: bytes
) -> None:
    post(server, flac, "?model=nova-3&language=de&smart_format=true")
    [request] = server.requests
    assert request.path == "/v1/listen"
    assert request.option("model") == "nova-3"
    assert request.option("language") == "de"
    assert request.content_type == "audio/flac"
    assert request.body_size == len(flac)
    assert request.audio_seconds == pytest.approx(3.0)
    assert request.status == 200
    assert not request.chunked
    assert request.headers["Authorization"] == "Token [REDACTED]"
    assert KEY not in repr(request)
    assert KEY not in repr(server)
    assert server.received_audio_seconds == pytest.approx(3.0)


def test_redaction_can_be_turned_off(flac: bytes) -> None:
    with FakeDeepgramServer(KEY, redact_key=False) as server:
        post(server, flac)
        assert server.requests[0].headers["Authorization"] == f"Token {KEY}"


def test_chunked_upload_is_decoded_like_a_sized_one(
    server: FakeDeepgramServer, flac: bytes
) -> None:
    status, _, body = post(server, flac, chunked=True)
    assert status == 200
    assert json.loads(body)["metadata"]["duration"] == pytest.approx(3.0)
    [request] = server.requests
    assert request.chunked
    assert request.body_size == len(flac)


def test_opus_in_ogg_is_decoded(server: FakeDeepgramServer) -> None:
    data, mime = encode_upload(bursts(2.0, [(0.5, 1.5)]), SR, "opus")
    status, _, body = post(server, data, content_type=mime)
    assert status == 200
    payload = json.loads(body)
    assert payload["metadata"]["duration"] == pytest.approx(2.0, abs=0.01)
    assert len(words_of(payload)) == 2


@pytest.mark.parametrize("key", [None, "wrong"])
def test_a_wrong_or_missing_key_gets_deepgrams_401(
    server: FakeDeepgramServer, flac: bytes, key: str | None
) -> None:
    status, _, body = post(server, flac, key=key)
    assert status == 401
    error = json.loads(body)
    assert error["err_code"] == "INVALID_AUTH"
    assert error["err_msg"] == "Invalid credentials."
    assert error["request_id"]
    assert server.requests[0].status == 401


def test_undecodable_audio_and_wrong_content_type_get_400(
    server: FakeDeepgramServer, flac: bytes
) -> None:
    status, _, body = post(server, b"not audio at all" * 50)
    assert status == 400
    assert json.loads(body)["err_code"] == "Bad Request"
    status, _, _ = post(server, flac, content_type="application/json")
    assert status == 400
    status, _, _ = post(server, flac, content_type="application/octet-stream")
    assert status == 200


def test_features_shape_the_response_like_deepgram(
    server: FakeDeepgramServer, flac: bytes
) -> None:
    query = "?smart_format=true&diarize=true&utterances=true&paragraphs=true&summarize=v2"
    status, _, body = post(server, flac, query)
    assert status == 200
    payload = json.loads(body)
    words = words_of(payload)
    assert [w["punctuated_word"] for w in words] == ["Word0", "word1.", "Word2."]
    assert [w["speaker"] for w in words] == [0, 0, 1]  # speakers alternate per utterance
    assert all(0 <= w["speaker_confidence"] <= 1 for w in words)
    utterances = payload["results"]["utterances"]
    assert [(u["speaker"], u["transcript"]) for u in utterances] == [
        (0, "Word0 word1."),
        (1, "Word2."),
    ]
    assert utterances[0]["start"] == pytest.approx(0.5)
    paragraphs = payload["results"]["channels"][0]["alternatives"][0]["paragraphs"]
    assert [p["speaker"] for p in paragraphs["paragraphs"]] == [0, 1]
    assert paragraphs["paragraphs"][1]["sentences"][0]["text"] == "Word2."
    assert payload["results"]["summary"]["result"] == "success"
    assert payload["metadata"]["summary_info"]["input_tokens"] == 3
    # audioflow's own reader understands it.
    transcript = Transcript.from_deepgram(body)
    assert [s.speaker for s in transcript.segments] == ["Speaker 0", "Speaker 1"]
    assert transcript.duration == pytest.approx(3.0)


def test_a_script_replaces_the_numbered_words(flac: bytes) -> None:
    with FakeDeepgramServer(KEY, script=["hello", "there"]) as server:
        _, _, body = post(server, flac)
    assert [w["word"] for w in words_of(json.loads(body))] == ["hello", "there", "hello"]


def test_faults_are_served_in_order_then_normal_answers(
    server: FakeDeepgramServer, flac: bytes
) -> None:
    server.push(Fault.rate_limited(retry_after=7), Fault.unavailable(), Fault.malformed())
    assert server.pending_faults == 3
    status, headers, body = post(server, flac)
    assert (status, headers["Retry-After"]) == (429, "7")
    assert json.loads(body)["err_code"] == "TOO_MANY_REQUESTS"
    status, _, body = post(server, flac)
    assert status == 503
    assert set(json.loads(body)) == {"err_code", "err_msg", "request_id"}
    status, _, body = post(server, flac)
    assert status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)
    status, _, _ = post(server, flac)
    assert status == 200
    assert [r.status for r in server.requests] == [429, 503, 200, 200]
    assert server.pending_faults == 0


def test_a_slow_answer_trips_a_client_timeout_and_stop_does_not_wait(flac: bytes) -> None:
    server = FakeDeepgramServer(KEY).start()
    try:
        server.push(Fault.slow(60))
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(
                f"{server.url}/v1/listen",
                content=flac,
                headers={"Authorization": f"Token {KEY}", "Content-Type": "audio/flac"},
                timeout=0.3,
            )
        assert len(server.requests) == 1
    finally:
        server.stop()  # releases the delayed handler instead of waiting 60 s


@pytest.mark.anyio
async def test_async_context_manager_with_an_async_client(flac: bytes) -> None:
    async with FakeDeepgramServer(KEY) as server, httpx.AsyncClient() as client:
        response = await client.post(
            f"{server.url}/v1/listen",
            params={"utterances": "true"},
            content=flac,
            headers={"Authorization": f"Token {KEY}", "Content-Type": "audio/flac"},
        )
    assert response.status_code == 200
    assert len(response.json()["results"]["utterances"]) == 2
    with pytest.raises(RuntimeError):
        _ = server.url  # stopped


def test_unknown_paths_get_404(server: FakeDeepgramServer) -> None:
    response = httpx.post(f"{server.url}/v2/nothing", content=b"x")
    assert response.status_code == 404


def test_importing_the_fake_needs_no_pytest() -> None:
    code = (
        "import sys; from audioflow.testing import FakeDeepgramServer, Fault; "
        "assert 'pytest' not in sys.modules, 'pytest imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
