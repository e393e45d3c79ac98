"""Approved message content: versioned, in English and Spanish, rendered per channel.

Message steps name content by id and version (`content: welcome@1`) instead of carrying
text. Each content lives in templates/messages/<id>.yaml (PITWALL_TEMPLATES_DIR/messages
when that variable is set):

    id: welcome
    description: First message once the patient's therapy is delivered.
    purpose: treatment            # treatment | adherence | marketing (the consent purpose)
    message_class: operational    # safety | clinical | operational | promotional
    versions:
      - version: 1
        approved_on: 2026-11-15
        approved_by: MLR-2026-031
        text:                     # generic wording: no drug name, no diagnosis
          sms:
            en: {text: "Welcome to {program_name}. ..."}
            es: {text: "Le damos la bienvenida a {program_name}. ..."}
          email:
            en: {subject: "Welcome to {program_name}", text: "..."}
            es: {subject: "...", text: "..."}
        detail:                   # optional: may name {drug_name}; sent only when the
          sms:                    # patient's consent allows detail
            en: {text: "..."}

Loading runs domain.content_check.check_content on every content and refuses the whole
catalog with one ContentInvalid listing every problem (file, version, channel, language).

Load the catalog outside Temporal's workflow sandbox (in the worker or an activity): the
check reads files and imports a large drug dictionary. Rendering itself is pure.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal, cast

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from domain.content_check import check_content, check_version, placeholders_in
from domain.template_loader import DEFAULT_TEMPLATES_DIR, display_path, templates_dir

Channel = Literal["sms", "email", "voice", "push"]
CONTENT_ID = r"[a-z][a-z0-9_]*"
DEFAULT_LANGUAGE = "en"
MESSAGES_SUBDIR = "messages"
CONTENT_SUFFIXES = (".yaml", ".yml")

_REF = re.compile(rf"({CONTENT_ID})@([1-9][0-9]*)")


class ContentRef(BaseModel, frozen=True):
    """Which approved content and version a message sends: `welcome@1`."""

    id: str = Field(pattern=rf"^{CONTENT_ID}$")
    version: int = Field(ge=1)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        # Lets a model field typed ContentRef be written as "welcome@1" in YAML / JSON.
        return _split_ref(value) if isinstance(value, str) else value

    @classmethod
    def parse(cls, text: str) -> ContentRef:
        """`"welcome@1"` -> ContentRef(id="welcome", version=1); ValueError otherwise."""
        return cls(**_split_ref(text))

    def __str__(self) -> str:
        return f"{self.id}@{self.version}"


def _split_ref(text: str) -> dict[str, Any]:
    match = _REF.fullmatch(text.strip())
    if not match:
        raise ValueError(
            f"content reference {text!r} must be <id>@<version>, e.g. 'welcome@1' "
            "(id: lower-case letters, digits, _; version: 1 or more)"
        )
    return {"id": match[1], "version": int(match[2])}


class ChannelText(BaseModel):
    """The wording for one channel and language; `subject` for email only (required there)."""

    model_config = ConfigDict(extra="forbid")

    text: str
    subject: str | None = None


class ContentVersion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    approved_on: date
    approved_by: str  # reviewer / approval record id, e.g. "MLR-2026-031"
    # channel -> language ("en", "es") -> wording. Generic: names no drug, no diagnosis.
    text: dict[Channel, dict[str, ChannelText]]
    # Optional wording that may name the drug ({drug_name}); used only when the patient's
    # consent allows detail and that channel / language has one.
    detail: dict[Channel, dict[str, ChannelText]] = Field(default_factory=dict)


class MessageContent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=rf"^{CONTENT_ID}$")
    description: str
    purpose: Literal["treatment", "adherence", "marketing"]
    message_class: Literal["safety", "clinical", "operational", "promotional"]
    versions: list[ContentVersion] = Field(min_length=1)


class Rendered(BaseModel):
    """A message ready to hand to the channel; `language` and `detail` say what was used."""

    content: ContentRef
    channel: Channel
    language: str
    text: str
    subject: str | None
    detail: bool


class UnknownContent(LookupError):
    """No such content, version or channel; the message names the reference only."""

    def __init__(self, ref: str, what: str = "") -> None:
        self.ref = ref
        self.message = f"content {ref!r} {what or 'is not in the catalog'}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class ContentInvalid(ValueError):
    """Content that breaks the rules; `.problems` has one line each, str() lists them."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class ContentCatalog:
    """Approved content by id and version."""

    def __init__(self, contents: Iterable[MessageContent]) -> None:
        self._contents: dict[str, MessageContent] = {}
        duplicates = []
        for content in contents:
            if content.id in self._contents:
                duplicates.append(f"{content.id}: defined twice")
            self._contents[content.id] = content
        if duplicates:
            raise ContentInvalid(duplicates)

    @classmethod
    def load(cls, folder: Path | None = None, products: Iterable[str] = ()) -> ContentCatalog:
        """Every content file in `folder` (default: templates/messages), checked against the
        rules and the program's product names; ContentInvalid lists every problem."""
        root = Path(folder) if folder is not None else messages_dir()
        if not root.is_dir():
            raise ContentInvalid([f"{display_path(root)}: content folder not found"])
        products = tuple(products)
        contents: list[MessageContent] = []
        problems: list[str] = []
        for path in sorted(
            p for p in root.iterdir() if p.is_file() and p.suffix in CONTENT_SUFFIXES
        ):
            shown = display_path(path)
            try:
                content = _read(path)
            except ContentInvalid as exc:
                problems += [f"{shown}: {p}" for p in exc.problems]
                continue
            if content.id != path.stem:
                problems.append(f"{shown}: id {content.id!r} must match the file name")
            problems += [f"{shown}: {p}" for p in check_content(content, products)]
            contents.append(content)
        if problems:
            raise ContentInvalid(problems)
        return cls(contents)

    def content(self, content_id: str) -> MessageContent:
        try:
            return self._contents[content_id]
        except KeyError:
            raise UnknownContent(content_id) from None

    def ids(self) -> list[str]:
        return sorted(self._contents)

    def get(self, ref: ContentRef) -> ContentVersion:
        content = self._contents.get(ref.id)
        if content is None:
            raise UnknownContent(str(ref))
        for version in content.versions:
            if version.version == ref.version:
                return version
        raise UnknownContent(str(ref), "has no such version")

    def channels(self, ref: ContentRef) -> frozenset[str]:
        return frozenset(self.get(ref).text)

    def placeholders(self, ref: ContentRef) -> frozenset[str]:
        """Every {name} used in any channel, language, subject or detail of that version."""
        version = self.get(ref)
        names: set[str] = set()
        for table in (version.text, version.detail):
            for languages in table.values():
                for wording in languages.values():
                    names |= placeholders_in(wording.text) | placeholders_in(wording.subject or "")
        return frozenset(names)

    def check_for(self, ref: ContentRef, products: Iterable[str]) -> list[str]:
        """The problems of that version against a program's own product names."""
        return check_version(self.content(ref.id), self.get(ref), products)

    def render(
        self,
        ref: ContentRef,
        channel: str,
        language: str,
        values: Mapping[str, str],
        *,
        detail_allowed: bool,
    ) -> Rendered:
        """The wording for `channel` in the patient's language (a BCP 47 tag: "es-US" ->
        "es"; English when that language is not offered), with placeholders filled. Detail
        wording is used only when `detail_allowed` and it exists for that channel and
        language. A missing value raises ValueError naming the placeholder."""
        version = self.get(ref)
        if channel not in version.text:
            raise UnknownContent(str(ref), f"has no {channel!r} wording")
        chosen = cast(Channel, channel)  # a key of version.text, so one of Channel
        wanted = primary_language(language)
        generic = version.text[chosen]
        lang = wanted if wanted in generic else DEFAULT_LANGUAGE
        if lang not in generic:
            raise UnknownContent(str(ref), f"has no {channel} wording in {lang!r}")
        detailed = version.detail.get(chosen, {}).get(lang)
        use_detail = detail_allowed and detailed is not None
        wording = detailed if use_detail and detailed is not None else generic[lang]
        where = f"{ref} {channel}/{lang}{' detail' if use_detail else ''}"
        return Rendered(
            content=ref,
            channel=chosen,
            language=lang,
            text=_fill(wording.text, values, where),
            subject=_fill(wording.subject, values, where) if wording.subject else None,
            detail=use_detail,
        )


def primary_language(tag: str | None) -> str:
    """The primary subtag of a BCP 47 language tag, lower-cased: "es-US" -> "es"."""
    primary = re.split(r"[-_]", (tag or "").strip(), maxsplit=1)[0].lower()
    return primary or DEFAULT_LANGUAGE


def _fill(text: str, values: Mapping[str, str], where: str) -> str:
    out: list[str] = []
    for literal, name, _, _ in string.Formatter().parse(text):
        out.append(literal)
        if name is None:
            continue
        value = values.get(name)
        if value is None:
            raise ValueError(f"content {where} needs a value for placeholder {{{name}}}")
        out.append(str(value))
    return "".join(out)


def messages_dir() -> Path:
    """templates/messages: under PITWALL_TEMPLATES_DIR when that is set and has a messages/
    folder, else the bundled one (a folder of journey templates only still gets the
    bundled content)."""
    folder = templates_dir() / MESSAGES_SUBDIR
    return folder if folder.is_dir() else DEFAULT_TEMPLATES_DIR / MESSAGES_SUBDIR


@functools.cache
def default_catalog() -> ContentCatalog:
    """The bundled catalog, loaded and checked once per process."""
    return ContentCatalog.load()


# -- reading one file ------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (YAML would silently keep the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read(path: Path) -> MessageContent:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except (OSError, UnicodeDecodeError) as exc:
        raise ContentInvalid([f"cannot read: {exc}"]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}: " if mark else ""
        raise ContentInvalid([f"{where}invalid YAML: {exc.problem}"]) from None
    except yaml.YAMLError as exc:
        raise ContentInvalid([f"invalid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise ContentInvalid(["the file must hold a mapping (id, description, ..., versions)"])
    try:
        return MessageContent.model_validate(data)
    except ValidationError as exc:
        raise ContentInvalid([_describe(err) for err in exc.errors()]) from None


def _describe(err: Any) -> str:
    path = ""
    for part in err["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    kind = err["type"]
    if kind == "missing":
        message = "required field is missing"
    elif kind == "extra_forbidden":
        message = "unknown field"
    else:
        message = str(err["msg"])
        value = err.get("input")
        if isinstance(value, str | int | float | bool) and len(str(value)) <= 40:
            message += f" (got {value!r})"
    return f"field {path!r}: {message}"
