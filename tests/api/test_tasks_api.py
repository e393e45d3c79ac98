"""GET /v1/tasks across journeys: filters, and pages a hub can walk while work arrives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from store.tasks import JourneyTaskOpened
from tests.api.conftest import ApiStack
from tests.api.test_journeys_api import assert_problem

T0 = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)


def open_task(api: ApiStack, journey: str, n: int, due_in_hours: float) -> int:
    task, _ = api.store.tasks.open_for_journey(
        JourneyTaskOpened(
            journey_ref=journey, patient_ref="pt-" + journey.rsplit("/", 1)[-1],
            step_id="missing_info", journey_task_id=f"missing_info-{n}",
            title="Send the missing information", role="paging_office", priority="routine",
            opened_at=T0, due_at=T0 + timedelta(hours=due_in_hours),
        )
    )  # fmt: skip
    assert task.id is not None
    return task.id


async def test_the_queue_pages_in_due_order_each_task_once(api: ApiStack) -> None:
    ids = [open_task(api, "journey/prog/pt-page1", n, due) for n, due in
           enumerate([5, 1, 3, 3, 3, 2, 8], start=1)]  # fmt: skip
    expected = [ids[i] for i in (1, 5, 2, 3, 4, 0, 6)]  # by due time, then id
    seen: list[int] = []
    token = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"role": "paging_office", "page_size": 3}
        if token:
            params["page_token"] = token
        page = (await api.http.get("/v1/tasks", params=params)).json()
        seen += [t["id"] for t in page["items"]]
        pages += 1
        if pages == 1:  # work arriving mid-walk, due before this page: shifts no later page
            open_task(api, "journey/prog/pt-page1", 99, 0.5)
        token = page.get("next_page_token")
        if not token:
            break
    assert seen == expected and pages == 3


async def test_the_queue_filters_by_journey_and_refuses_a_forged_token(api: ApiStack) -> None:
    mine = open_task(api, "journey/prog/pt-filter1", 1, 1)
    open_task(api, "journey/prog/pt-filter2", 1, 1)
    page = await api.http.get("/v1/tasks", params={"journey_id": "journey/prog/pt-filter1"})
    assert [t["id"] for t in page.json()["items"]] == [mine]
    assert page.json()["next_page_token"] is None
    not_overdue = await api.http.get("/v1/tasks", params={"journey_id": "journey/prog/pt-filter1",
                                                          "overdue": False})  # fmt: skip
    assert [t["id"] for t in not_overdue.json()["items"]] == [mine]  # due in a month

    forged = await api.http.get("/v1/tasks", params={"page_token": "A" * 32})
    body = assert_problem(forged, 422, "invalid-request")
    assert body["errors"][0]["field"] == "query.page_token"
    too_big = await api.http.get("/v1/tasks", params={"page_size": 201})
    assert_problem(too_big, 422, "invalid-request")
