"""Load journey templates from YAML files, with errors a template author can act on.

Every problem is one line naming the file, the step (by id and list index), the
field and what is wrong, plus the YAML line it sits on:

    templates/x.yaml: step 'pa_submit' (steps[4]) field 'timeout': invalid duration 'soon' ...

Templates live in the repository's `templates/` directory unless the environment
variable PITWALL_TEMPLATES_DIR names another one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from domain.template import JourneyTemplate

ENV_TEMPLATES_DIR = "PITWALL_TEMPLATES_DIR"
DEFAULT_TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
TEMPLATE_SUFFIXES = (".yaml", ".yml")


class TemplateError(ValueError):
    """One or more problems with template files; str() gives one line per problem."""

    def __init__(self, path: str | os.PathLike[str], problems: Sequence[str]) -> None:
        self.path = str(path)
        self.lines = [f"{self.path}: {problem}" for problem in problems]
        super().__init__("\n".join(self.lines))

    @classmethod
    def merge(cls, errors: Sequence[TemplateError]) -> TemplateError:
        merged = cls(errors[0].path, [])
        merged.lines = [line for error in errors for line in error.lines]
        merged.args = ("\n".join(merged.lines),)
        return merged


class UnknownTemplate(KeyError):
    """No template with that id (or version); the message lists the known ones."""

    def __init__(
        self, template_id: str, known: Iterable[tuple[str, int]], version: int | None = None
    ) -> None:
        self.template_id = template_id
        self.version = version
        self.known = sorted(known)
        ids = sorted({i for i, _ in self.known})
        if version is not None and template_id in ids:
            versions = ", ".join(str(v) for i, v in self.known if i == template_id)
            self.message = (
                f"template {template_id!r} has no version {version}; known versions: {versions}"
            )
        else:
            self.message = f"unknown template {template_id!r}; known: {', '.join(ids) or '(none)'}"
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.message


def templates_dir() -> Path:
    """PITWALL_TEMPLATES_DIR if set, else the repository's templates/ directory."""
    override = os.environ.get(ENV_TEMPLATES_DIR)
    return Path(override) if override else DEFAULT_TEMPLATES_DIR


def template_files(directory: str | os.PathLike[str] | None = None) -> list[Path]:
    """The template files in a directory (default: templates_dir()), sorted by name."""
    root = Path(directory) if directory is not None else templates_dir()
    if not root.is_dir():
        raise TemplateError(display_path(root), ["templates directory not found"])
    return sorted(p for p in root.iterdir() if p.is_file() and p.suffix in TEMPLATE_SUFFIXES)


def load_template(path: str | os.PathLike[str]) -> JourneyTemplate:
    """Read and validate one template file; raises TemplateError listing every problem."""
    path = Path(path)
    shown = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(shown, [f"cannot read: {exc}"]) from exc
    node, data = _parse_yaml(text, shown)
    if not isinstance(data, dict):
        raise TemplateError(shown, ["the file must hold a mapping (id, version, steps, ...)"])
    try:
        template = JourneyTemplate.model_validate(data)
    except ValidationError as exc:
        problems = [p for err in exc.errors() for p in _describe(err, data, node)]
        raise TemplateError(shown, problems) from None
    # Imported here: the catalog finds its folder through this module.
    from domain.content import default_catalog
    from domain.template_content import content_problems

    problems = content_problems(template, default_catalog())
    if problems:
        raise TemplateError(shown, [_with_line(p, node) for p in problems])
    return template


def load_template_versions(
    directory: str | os.PathLike[str] | None = None,
) -> dict[tuple[str, int], JourneyTemplate]:
    """Every template in the directory keyed by (id, version). Problems in any file, or
    two files with the same id and version, raise one TemplateError covering them all."""
    found: dict[tuple[str, int], tuple[Path, JourneyTemplate]] = {}
    errors: list[TemplateError] = []
    for path in template_files(directory):
        try:
            template = load_template(path)
        except TemplateError as exc:
            errors.append(exc)
            continue
        key = (template.id, template.version)
        if key in found:
            errors.append(
                TemplateError(
                    display_path(path),
                    [
                        f"template {template.id!r} version {template.version} is also "
                        f"defined in {display_path(found[key][0])}"
                    ],
                )
            )
            continue
        found[key] = (path, template)
    if errors:
        raise TemplateError.merge(errors)
    return {key: template for key, (_, template) in sorted(found.items())}


def load_templates(
    directory: str | os.PathLike[str] | None = None,
) -> dict[str, JourneyTemplate]:
    """Every template in the directory keyed by id; the latest version of each."""
    latest: dict[str, JourneyTemplate] = {}
    for (template_id, _), template in load_template_versions(directory).items():
        latest[template_id] = template  # items are sorted, so the last one wins
    return latest


def get_template(
    template_id: str,
    directory: str | os.PathLike[str] | None = None,
    version: int | None = None,
) -> JourneyTemplate:
    """One template by id (latest version unless `version` is given)."""
    versions = load_template_versions(directory)
    if version is not None:
        if (template_id, version) in versions:
            return versions[(template_id, version)]
    else:
        matching = [v for (i, v) in versions if i == template_id]
        if matching:
            return versions[(template_id, max(matching))]
    raise UnknownTemplate(template_id, versions, version)


def unreachable_steps(template: JourneyTemplate) -> list[str]:
    """Ids of steps no path from the first step reaches (a likely authoring mistake)."""
    places = template.places()
    seen: set[str] = set()
    todo = [template.steps[0].id]
    while todo:
        step_id = todo.pop()
        if step_id in seen:
            continue
        seen.add(step_id)
        place = places[step_id]
        for exit_ in place.step.exits():
            target = exit_.target or place.following()
            if target:
                todo.append(target)
        todo += [children[0].id for _, children in place.step.children()]
    return [i for i in places if i not in seen]


# -- YAML ------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (YAML would keep the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"duplicate key {key!r} (first at line {seen[key].start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text: str, shown: str) -> tuple[yaml.Node | None, Any]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise TemplateError(shown, [f"{where}invalid YAML: {what}"]) from None
    except yaml.YAMLError as exc:
        raise TemplateError(shown, [f"invalid YAML: {exc}"]) from None
    finally:
        loader.dispose()
    return node, data


def _node_at(node: yaml.Node | None, path: Sequence[str | int]) -> yaml.Node | None:
    """The deepest YAML node along `path` (mapping keys / sequence indexes)."""
    for part in path:
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if 0 <= part < len(node.value) else None
        else:
            child = None
        if child is None:
            break
        node = child
    return node


def _line(node: yaml.Node | None, path: Sequence[str | int]) -> str:
    found = _node_at(node, path)
    return f" (line {found.start_mark.line + 1})" if found is not None else ""


# -- pydantic errors → one line each ---------------------------------------------------

_GRAPH_LINE = re.compile(
    r"\((steps\[\d+\](?:\.[a-z_]+\[\d+\](?:\.steps\[\d+\])?)*)\) field '([^']*)'"
)


def _field_path(parts: Sequence[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _split_path(path: str) -> list[str | int]:
    parts = [p for p in re.split(r"\.|\[|\]\.?", path) if p]
    return [int(p) if p.isdigit() else p for p in parts]


def _with_line(problem: str, node: yaml.Node | None) -> str:
    """A `step 'id' (steps[i]) field 'f': ...` line, with the YAML line it points at."""
    match = _GRAPH_LINE.search(problem)
    path = [*_split_path(match[1]), *_split_path(match[2])] if match else []
    return problem + _line(node, path)


def _describe(err: Any, data: dict[str, Any], node: yaml.Node | None) -> list[str]:
    loc: tuple[str | int, ...] = tuple(err["loc"])
    message = _message(err)
    if not loc:
        # A template-level check; the graph check already names step and field per line.
        return [_with_line(line, node) for line in message.splitlines()]
    if loc[0] == "steps" and len(loc) > 1 and isinstance(loc[1], int):
        raw, yaml_path, rest = _innermost_step(loc, data)
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            rest = ["kind"]
        step_id = raw.get("id")
        shown = _field_path(yaml_path)
        where = f"step {step_id!r} ({shown})" if isinstance(step_id, str) else shown
        field = f" field {_field_path(rest)!r}" if rest else ""
        return [f"{where}{field}: {message}{_line(node, [*yaml_path, *rest])}"]
    return [f"field {_field_path(loc)!r}: {message}{_line(node, loc)}"]


def _innermost_step(
    loc: Sequence[str | int], data: dict[str, Any]
) -> tuple[dict[str, Any], list[str | int], list[str | int]]:
    """Walk `steps[i](.kind).branches[j].steps[k]...` down to the deepest step in `loc`:
    (that step's raw mapping, its YAML path, the rest of the location)."""
    raw: Any = data
    path: list[str | int] = []
    rest = list(loc)
    while len(rest) >= 2 and rest[0] == "steps" and isinstance(rest[1], int):
        steps = raw.get("steps") if isinstance(raw, dict) else None
        index = rest[1]
        candidate = steps[index] if isinstance(steps, list) and index < len(steps) else None
        raw = candidate if isinstance(candidate, dict) else {}
        path += ["steps", index]
        rest = rest[2:]
        if rest and rest[0] == raw.get("kind"):  # pydantic puts the union tag in the path
            rest = rest[1:]
        if len(rest) >= 4 and rest[0] == "branches" and isinstance(rest[1], int) \
                and rest[2] == "steps":  # fmt: skip
            branches = raw.get("branches")
            branch = branches[rest[1]] if isinstance(branches, list) and rest[1] < len(
                branches) else {}  # fmt: skip
            path += ["branches", rest[1]]
            raw = branch if isinstance(branch, dict) else {}
            rest = rest[2:]
    return raw if isinstance(raw, dict) else {}, path, rest


def _message(err: Any) -> str:
    kind, msg, value = err["type"], err["msg"], err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "value_error":
        return str(msg).removeprefix("Value error, ")
    if kind == "union_tag_invalid":
        return f"unknown step kind {ctx.get('tag')!r}; use one of {ctx.get('expected_tags')}"
    if kind == "union_tag_not_found":
        return "missing `kind`; every step needs one"
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (not part of this step kind)"
    if isinstance(value, str | int | float | bool) or value is None:
        return f"{msg} (got {value!r})"
    return str(msg)


def display_path(path: Path) -> str:
    """A path as the user would write it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
