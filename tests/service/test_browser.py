"""The web page in a real headless Chromium against a real service and the Whisper model.

Debian's ``chromium`` driven by Playwright (no browser download): enter the key, choose
the shipped sample, upload; the upload and job progress reach 1, the status reads
"completed", the transcript shows what the sample says, and the SRT link saves a real
download. Without a ``chromium`` binary the test is skipped, except under CI, where it
fails.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright
from service_proc import ALICE, service

pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample.flac"
TRANSCRIPTION_TIMEOUT = 120_000  # ms: the upload, the model's first load, 16 s of speech


@pytest.fixture
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium's sandbox refuses to run as root, as in a CI container.
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def test_upload_follow_read_and_download_in_chromium(tmp_path: Path, browser: Browser) -> None:
    with service(tmp_path, transcriber="whisper") as server:
        context = browser.new_context(accept_downloads=True)
        try:
            page = context.new_page()
            page_errors: list[str] = []
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.goto(server.url + "/")

            page.fill("#key", ALICE["key"])
            page.set_input_files("#file", SAMPLE)
            page.click("#upload")

            expect(page.locator("#status")).to_have_text(
                "completed", timeout=TRANSCRIPTION_TIMEOUT
            )
            expect(page.locator("#upload-progress")).to_have_js_property("value", 1)
            expect(page.locator("#job-progress")).to_have_js_property("value", 1)
            expect(page.locator("#percent")).to_have_text("100 %")
            expect(page.locator("#error")).to_have_text("")

            # The transcript and the links come after "completed" (one more fetch each).
            srt_link = page.locator("#downloads a[data-format=srt]")
            expect(srt_link).to_be_visible(timeout=30_000)
            page.wait_for_function(
                "document.querySelectorAll('#transcript p').length >= 2", timeout=30_000
            )
            paragraphs = page.locator("#transcript p")
            assert paragraphs.count() >= 2
            assert paragraphs.locator("time").count() == paragraphs.count()
            heard = page.locator("#transcript").inner_text().lower()
            for word in ("transcript", "subtitle", "recording"):
                assert word in heard, heard

            with page.expect_download(timeout=30_000) as download_info:
                srt_link.click()
            download = download_info.value
            assert download.failure() is None
            assert download.suggested_filename == "sample.srt"
            saved = tmp_path / "download" / download.suggested_filename
            download.save_as(saved)
            srt = saved.read_text(encoding="utf-8")
            assert srt.startswith("1\n") and "-->" in srt
            assert "subtitle" in srt.lower()

            assert page_errors == []
        finally:
            context.close()
