"""`starter.py simulate`: a small refill cohort end to end (summary, HTML, JSON), a
comparison on the same sampled patients, and one clear line (exit 2) for each mistake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simulate.cohort import SCRIPTS
from starter import app

runner = CliRunner()


def test_simulate_writes_a_summary_an_html_report_and_json(tmp_path: Path) -> None:
    html, data = tmp_path / "out" / "run.html", tmp_path / "run.json"
    result = runner.invoke(app, [
        "simulate", "refill_adherence@1", "--patients", "6", "--months", "6", "--seed", "3",
        "--scenario", "typical", "--html", str(html), "--json", str(data),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "refill_adherence@1" in result.stdout and "Funnel" in result.stdout
    assert f"HTML report: {html}" in result.stdout
    page = html.read_text(encoding="utf-8")
    assert "data:image/png;base64," in page and "typical" in page
    report = json.loads(data.read_text(encoding="utf-8"))
    assert report["kind"] == "pitwall.simulation.report"
    assert report["run"]["patients"] == 6 and report["run"]["patient_years"] == 3
    assert report["run"]["template"] == "refill_adherence@1" and report["run"]["seed"] == "3"
    assert report["time_to_therapy"]["applicable"] is False


def test_the_html_goes_under_data_simulations_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["simulate", "refill_adherence", "--patients", "2",
                                 "--months", "2"])  # fmt: skip
    assert result.exit_code == 0, result.output
    written = list((tmp_path / ".data" / "simulations").glob("*.html"))
    assert [p.name for p in written] == ["refill_adherence-v1-typical-seed1.html"]
    assert str(Path(".data") / "simulations" / written[0].name) in result.stdout


def test_compare_runs_the_same_sampled_patients(tmp_path: Path) -> None:
    same, other = tmp_path / "same.json", tmp_path / "other.json"
    base = ["simulate", "refill_adherence", "--patients", "8", "--months", "6", "--seed", "9",
            "--html", str(tmp_path / "c.html")]  # fmt: skip
    # The same template on the same sampled cohort: identical patients, nothing to flag.
    result = runner.invoke(app, [*base, "--compare", "refill_adherence@1", "--json", str(same)])
    assert result.exit_code == 0, result.output
    comparison = json.loads(same.read_text(encoding="utf-8"))
    assert comparison["kind"] == "pitwall.simulation.comparison"
    assert comparison["a"]["funnel"] == comparison["b"]["funnel"]
    assert comparison["a"]["messages"] == comparison["b"]["messages"]
    assert not any(d["notable"] for d in comparison["deltas"])
    assert "0 notable differences" in result.stdout
    # Another scenario, same seed: the riskier cohort's adherence is flagged.
    result = runner.invoke(app, [*base, "--compare-scenario", "adherence_risk",
                                 "--json", str(other)])  # fmt: skip
    assert result.exit_code == 0, result.output
    comparison = json.loads(other.read_text(encoding="utf-8"))
    assert comparison["b"]["run"]["scenario"] == "adherence_risk"
    assert comparison["a"]["run"]["seed"] == comparison["b"]["run"]["seed"] == "9"
    assert "A: refill_adherence@1" in (tmp_path / "c.html").read_text(encoding="utf-8")


# A template the simulator has no partner script for: specialty_start, its script taken
# away for the test (every bundled template may have one some day).
UNSCRIPTED = "specialty_start"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["no_such_template"], "unknown template 'no_such_template'"),
        (["refill_adherence@99"], "has no version 99"),
        (["refill_adherence@latest"], "use ID or ID@VERSION"),
        (["refill_adherence", "--compare", "no_such_template"], "unknown template"),
        (["refill_adherence", "--scenario", "no/such/file.yaml"], "cannot read"),
        (["refill_adherence", "--patients", "0"], "--patients must be at least 1"),
        (["refill_adherence", "--months", "0"], "--months must be in (0, 120]"),
        (["refill_adherence", "--months", "121"], "--months must be in (0, 120]"),
        ([None], "cannot simulate"),
        (["refill_adherence", "--compare", None], "cannot simulate"),
    ],
)
def test_mistakes_get_one_clear_line_and_exit_2(
    args: list[str | None], expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(SCRIPTS, UNSCRIPTED)
    argv = [a if a is not None else UNSCRIPTED for a in args]
    html = tmp_path / "never.html"
    result = runner.invoke(app, ["simulate", *argv, "--html", str(html)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not html.exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("description: broken\npa_required: 7\n", "pa_required"),  # a share above 1
        ("description: [unclosed\n", "not valid YAML"),  # the parser's message spans lines
    ],
)
def test_a_bad_scenario_file_is_named_with_what_is_wrong(
    text: str, expected: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["simulate", "refill_adherence", "--scenario", str(bad)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: scenario {bad}") and expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
