"""The framework's ceiling: Litestar endpoints that parse the same body and return a constant,
one on the event loop and one after the worker-thread round trip that Docflow's inference makes
(so the table shows what keeping inference off the event loop costs by itself)."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import msgspec
from litestar import Litestar, post


class Body(msgspec.Struct):
    text: str
    return_all_scores: bool = False


ANSWER = {"predicted_class": "invoice", "confidence": 1.0}
# The same hand-off as Docflow's scoring: a small executor of its own, not anyio's threads.
scoring_executor = ThreadPoolExecutor(2, thread_name_prefix="constant-scoring")


@post("/predict/text", status_code=200)
async def constant(data: Body) -> dict[str, object]:
    return ANSWER


@post("/predict/text-via-thread", status_code=200)
async def constant_via_thread(data: Body) -> dict[str, object]:
    return await asyncio.get_running_loop().run_in_executor(scoring_executor, dict, ANSWER)


app = Litestar([constant, constant_via_thread])
