"""parallel: run each branch's steps at once; go on when all (or the first) finish.

Branches are asyncio tasks on the runtime's loop (Temporal's deterministic loop in a
workflow), created in declaration order; each wakes the join through a done-callback,
which that loop runs in a deterministic order. No switch to a new run happens while
branches run: the boundary comes at the next step after the join.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from domain.steps.parallel import ParallelStep
from workflows.steps import Outcome, handles

if TYPE_CHECKING:
    from domain.journey import Frame
    from workflows.interpreter import JourneyInterpreter


@handles("parallel")
async def parallel(
    j: JourneyInterpreter, step: ParallelStep, resume: list[Frame] | None
) -> Outcome:
    finished: list[str] = []
    changed = asyncio.Event()

    async def run(branch_id: str, steps: list[Any]) -> None:
        await j.run_sequence(steps, None, branch=f"{step.id}.{branch_id}")
        finished.append(branch_id)

    def joined() -> bool:
        failed = any(t.done() and not t.cancelled() and t.exception() for t in tasks)
        if step.join == "first":
            return failed or bool(finished)
        return failed or all(t.done() for t in tasks)

    j.parallel_depth += 1
    tasks = [asyncio.create_task(run(b.id, b.steps)) for b in step.branches]
    for task in tasks:
        task.add_done_callback(lambda _: changed.set())
    try:
        while not joined():
            changed.clear()
            await changed.wait()
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        j.parallel_depth -= 1
        for branch in step.branches:
            j.state.branches.pop(f"{step.id}.{branch.id}", None)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result  # an exit inside a branch, or a cancelled journey
    j.outputs[step.id] = {"first": finished[0] if finished else None, "finished": finished}
    return step.next, f"joined:{','.join(finished)}"
