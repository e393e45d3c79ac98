from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from cli.templates import app
from tests.domain.conftest import MINI, mutate

runner = CliRunner()


def test_validate_repo_templates() -> None:
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    assert "✓" in result.stdout
    assert "specialty_start v1 (29 steps)" in result.stdout
    assert "specialty_start v2 (" in result.stdout
    assert result.stderr == ""


def test_validate_bad_file_exits_1_with_message(write) -> None:
    good = write(MINI, "good.yaml")
    bad = write(mutate("sla: 2d", "sla: soon"), "bad.yaml")
    result = runner.invoke(app, ["validate", str(good), str(bad)])
    assert result.exit_code == 1
    assert "mini v1" in result.stdout
    assert f"{bad}: step 'followup' (steps[4]) field 'sla': invalid duration 'soon'" in (
        result.stderr
    )
    assert "Traceback" not in result.output


def test_validate_directory_catches_duplicate_versions(write, tmp_path) -> None:
    write(MINI, "a.yaml")
    write(MINI, "b.yaml")
    result = runner.invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    assert "template 'mini' version 1 is also defined in" in result.stderr


def test_validate_missing_path_exits_2(tmp_path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "no such file or directory" in result.stderr


def test_show_mermaid() -> None:
    result = runner.invoke(app, ["show", "specialty_start", "--version", "1", "--mermaid"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("flowchart TD\n")
    assert 's_pa_decision -->|"timeout 14d"| s_pa_followup' in result.stdout
    assert "1. consent_request" not in result.stdout


def test_show_text_only_and_default_both() -> None:
    latest = runner.invoke(app, ["show", "specialty_start", "--text"])
    assert latest.stdout.startswith("specialty_start v2")
    text = runner.invoke(app, ["show", "specialty_start", "--version", "1", "--text"])
    assert text.exit_code == 0
    assert text.stdout.startswith("specialty_start v1")
    assert "flowchart" not in text.stdout
    both = runner.invoke(app, ["show", "specialty_start", "--version", "1"])
    assert both.exit_code == 0
    assert "9. pa_decision" in both.stdout
    assert "```mermaid\nflowchart TD\n" in both.stdout


def test_show_version_and_dir(write, tmp_path) -> None:
    write(MINI, "v1.yaml")
    write(mutate("version: 1", "version: 2"), "v2.yaml")
    latest = runner.invoke(app, ["show", "mini", "--text", "--dir", str(tmp_path)])
    assert latest.stdout.startswith("mini v2")
    first = runner.invoke(app, ["show", "mini", "--text", "--version", "1", "--dir", str(tmp_path)])
    assert first.stdout.startswith("mini v1")


def test_show_unknown_id_exits_2_without_traceback() -> None:
    result = runner.invoke(app, ["show", "nope"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: unknown template 'nope'; known: nurse_onboarding, refill_adherence, specialty_start"
    )
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_show_unknown_version_exits_2() -> None:
    result = runner.invoke(app, ["show", "specialty_start", "--version", "9"])
    assert result.exit_code == 2
    assert "has no version 9; known versions: 1" in result.stderr


def test_readme_template_reference_is_what_the_code_declares() -> None:
    from domain.template_reference import reference

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    between = readme.split("<!-- reference:start -->")[1].split("<!-- reference:end -->")[0]
    assert between.strip() == reference().strip(), "run: starter.py templates reference"
    result = runner.invoke(app, ["reference"])
    assert result.exit_code == 0 and "`copay.enroll`" in result.stdout
    assert "`parallel`" in result.stdout and "`repeat`" in result.stdout
