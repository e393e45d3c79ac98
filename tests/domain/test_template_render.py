from __future__ import annotations

import re

from domain.template_loader import get_template, load_template
from domain.template_render import node_id, to_mermaid, to_text
from tests.domain.conftest import MINI, mutate


def test_text_lists_every_step_with_its_essentials() -> None:
    template = get_template("specialty_start", version=1)
    text = to_text(template)
    numbered = [ln for ln in text.splitlines() if re.match(r"^\s*\d+\. ", ln)]
    assert len(numbered) == len(template.steps)
    by_id = {ln.split()[1]: ln for ln in numbered}
    assert list(by_id) == [s.id for s in template.steps]
    assert "pa.decided" in by_id["pa_decision"]
    assert "timeout params.pa_decision_timeout (=14d) → pa_followup" in by_id["pa_decision"]
    assert "[stage → PA_PENDED]" in by_id["pa_decision"]
    assert "else → appeal_submit" in by_id["pa_decided"]
    assert "payer.submit_prior_auth" in by_id["pa_submit"]
    assert "sms > email > voice > task treatment/operational: welcome@1" in by_id["welcome"]
    assert "task for reimbursement_specialist" in by_id["pa_followup"]
    assert "SLA params.followup_sla (=2d)" in by_id["pa_followup"]
    assert "→ pa_decision" in by_id["pa_followup"]
    assert "abandoned (consent_declined)" in by_id["consent_declined"]
    assert "until at(events.delivered" in by_id["refill_due"]


def test_mermaid_has_a_node_per_step_and_labelled_edges() -> None:
    template = get_template("specialty_start", version=1)
    chart = to_mermaid(template)
    lines = chart.splitlines()
    assert lines[0] == "flowchart TD"
    for step in template.steps:
        node = re.compile(rf"^    {node_id(step.id)}[\[({{/]")
        assert sum(bool(node.match(ln)) for ln in lines) == 1, step.id
    body = "\n".join(ln.strip() for ln in lines)
    assert 's_pa_decision -->|"timeout 14d"| s_pa_followup' in body
    assert 's_pa_decision -->|"pa.decided"| s_pa_decided' in body
    assert "s_pa_decided -->|\"events.pa_decision.outcome == 'approved'\"| s_sp_referral" in body
    assert 's_pa_decided -->|"else"| s_appeal_submit' in body
    assert "s_pa_followup --> s_pa_decision" in body
    assert "s_welcome --> s_refill_due" in body  # falls through to the following step
    assert 's_pa_decided{"pa_decided?"}' in body  # branch: diamond
    assert body.count('(["') == sum(s.kind == "exit" for s in template.steps)  # exit: stadium


def test_mermaid_labels_are_escaped_and_ids_safe(write) -> None:
    text = mutate("content: on_therapy@1", 'content: on_therapy@1\n    stage: "A<b>\\"q\\"|#"')
    text = mutate(
        "when: events.pa_decision.outcome == 'approved'",
        'when: "events.pa_decision.note == \'say \\"hi\\" | <b>\'"',
        text,
    )
    text = mutate(
        "action: payer.submit_prior_auth",
        "action: payer.submit_prior_auth\n    on_error: {'*': followup}",
        text,
    )
    chart = to_mermaid(load_template(write(text)))
    for line in chart.splitlines()[1:]:
        for label in re.findall(r'"(.*?)"', line):
            assert not re.search(r"[<>|`]", label.replace("<br/>", "")), line
    assert 'stage → A#lt;b#gt;#quot;q#quot;#124;#35;"' in chart
    assert "say #quot;hi#quot; #124; #lt;b#gt;" in chart
    assert 's_pa_submit -->|"any error"| s_followup' in chart
    assert 's_pa_submit -->|"ok"| s_pa_decision' in chart


def test_node_ids_avoid_mermaid_keywords() -> None:
    assert node_id("end") == "s_end"
    assert node_id("o_step") == "s_o_step"
    assert re.fullmatch(r"\w+", node_id("weird-id.x"))


def test_mini_text_mentions_every_kind(write) -> None:
    text = to_text(load_template(write(MINI)))
    for kind in ("partner_action", "wait_for_event", "branch", "message", "human_task", "exit"):
        assert f"  {kind}" in text
