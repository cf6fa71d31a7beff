"""The stage contract: function stages, run_stages wiring, back-pressure and errors."""

from __future__ import annotations

import anyio
import pytest
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from audioflow.stages.base import Stage, StageContext, function_stage, run_stages

pytestmark = pytest.mark.anyio


async def test_function_stages_compose_in_order() -> None:
    async def double(x: int) -> int:
        return 2 * x

    async def label(x: int) -> str:
        return f"<{x}>"

    out = await run_stages(range(5), function_stage(double), function_stage(label, name="label"))
    assert out == ["<0>", "<2>", "<4>", "<6>", "<8>"]
    assert function_stage(double).name == "double"
    assert isinstance(function_stage(double), Stage)


class _Recorder:
    """Counts items it has taken from its inbox, then waits until released."""

    name = "recorder"

    def __init__(self) -> None:
        self.taken = 0
        self.release = anyio.Event()
        self.blocked = anyio.Event()

    async def run(
        self, inbox: ObjectReceiveStream[int], outbox: ObjectSendStream[int], ctx: StageContext
    ) -> None:
        async with inbox, outbox:
            async for item in inbox:
                self.taken += 1
                if self.taken == 1:
                    self.blocked.set()
                    await self.release.wait()
                await outbox.send(item)


async def test_links_are_bounded() -> None:
    produced = 0

    async def count(x: int) -> int:
        nonlocal produced
        produced += 1
        return x

    slow = _Recorder()
    result: list[int] = []

    async def run() -> None:
        result.extend(await run_stages(range(100), function_stage(count), slow, buffer=2))

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await slow.blocked.wait()
        # Let everything that can run, run: the producer must stall on the full link.
        for _ in range(50):
            await anyio.lowlevel.checkpoint()
        # One item inside the slow stage, two in the link, one held by `count`'s send.
        assert produced <= 1 + 2 + 1
        slow.release.set()
    assert result == list(range(100))


async def test_a_failing_stage_stops_the_chain_with_its_own_error() -> None:
    seen: list[int] = []

    async def boom(x: int) -> int:
        if x == 3:
            raise RuntimeError("stage broke")
        return x

    async def record(x: int) -> int:
        seen.append(x)
        return x

    with pytest.raises(RuntimeError, match="stage broke"):
        await run_stages(range(1000), function_stage(boom), function_stage(record))
    # Items before the failure may or may not have got through before the chain was
    # cancelled (scheduling), but nothing at or after it did.
    assert seen == list(range(len(seen)))
    assert len(seen) <= 3


def test_built_in_stages_satisfy_the_protocol() -> None:
    from audioflow.stages import Decode, DetectSpeech, Quality

    for stage in (Decode(), Quality(), DetectSpeech()):
        assert isinstance(stage, Stage)
    assert [s.name for s in (Decode(), Quality(), DetectSpeech())] == ["decode", "quality", "vad"]


async def test_progress_is_clamped_and_forwarded() -> None:
    calls: list[tuple[str, float, str]] = []
    ctx = StageContext(job_id="j", report=lambda *args: calls.append(args))
    ctx.progress("decode", 1.5, "done")
    ctx.progress("decode", -1.0)
    assert calls == [("decode", 1.0, "done"), ("decode", 0.0, "")]


async def test_run_stages_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least one stage"):
        await run_stages([1])
    with pytest.raises(ValueError, match="buffer"):
        await run_stages([1], function_stage(anyio.sleep), buffer=-1)
