"""Docs that cannot drift from the code: what the docs say about things the code knows (fixtures,
predicates, hashed knowledge files, settings, services, commands, a command's output) is either
generated from the code (cds_tools/doc_blocks.py) or checked here against it."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cds_service.config import Settings
from cds_service.knowledge.registry import load_services
from cds_tools import doc_blocks
from cds_tools.fixtures import FIXTURES_DIR, fixture_paths
from cds_tools.replay import in_process_client, replay

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_generated_doc_blocks_are_current() -> None:
    assert doc_blocks.stale() == [], "run: .venv/bin/python -m cds_tools.doc_blocks --write"


def test_fixture_counts_in_the_docs_are_the_fixtures() -> None:
    count = len(fixture_paths())
    for doc in DOCS:
        for number in re.findall(r"\b(\d+)\s+(?:scenario\s+)?fixtures\b", text(doc)):
            assert int(number) == count, f"{doc.name} says {number} fixtures; there are {count}"


def responses(settings: Settings) -> list[dict[str, Any]]:
    now = datetime.now(UTC)

    async def run() -> list[dict[str, Any]]:
        async with in_process_client(settings, now) as client:
            return [r.response or {} for r in await replay(client, fixture_paths(), now)]

    return asyncio.run(run())


def test_the_healthchain_check_counts_are_what_the_fixtures_give(settings: Settings) -> None:
    """docs/integration.md states what HealthChain was given (tools/healthchain_check.py): a new
    fixture, card or suggestion makes this fail until the check is run again and the text updated."""
    stated = re.search(
        r"all (\d+) fixtures \((\d+)\s+cards, (\d+) suggestions, (\d+) system actions\)",
        text(ROOT / "docs" / "integration.md"),
    )
    assert stated is not None
    answers = responses(settings)
    cards = [card for answer in answers for card in answer.get("cards", [])]
    actual = (
        len(answers),
        len(cards),
        sum(len(card.get("suggestions", [])) for card in cards),
        sum(len(answer.get("systemActions", [])) for answer in answers),
    )
    assert tuple(int(n) for n in stated.groups()) == actual, (
        "docs/integration.md: run tools/healthchain_check.py and update the counts"
    )


def env_names() -> set[str]:
    """Every setting's environment variable (CDS_ + field name, or its alias)."""
    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names.add(alias if isinstance(alias, str) else f"CDS_{name.upper()}")
    return names


def test_every_setting_is_documented() -> None:
    documented = "\n".join(text(doc) for doc in DOCS)
    missing = [n for n in sorted(env_names()) if not re.search(rf"\b{n}\b", documented)]
    assert missing == [], f"settings no doc (README.md, docs/*.md) names: {missing}"


def test_every_variable_the_docs_name_exists() -> None:
    """A CDS_ variable in the docs is a setting, or one a tool or test reads (CDS_FIXTURES_DIR...)."""
    code = "\n".join(
        text(path)
        for folder in ("cds_service", "cds_tools", "tests", "tools", "bench", "docker")
        for path in (ROOT / folder).rglob("*.py")
    )
    known = env_names()
    for doc in DOCS:
        for name in set(re.findall(r"\b(CDS_[A-Z0-9_]*[A-Z0-9])\b", text(doc))):
            assert name in known or name in code, f"{doc.name} names {name}, which nothing reads"


def test_services_named_in_the_docs_exist(settings: Settings) -> None:
    services = load_services(settings.hooks_dir)
    readme = text(README)
    for service_id in services:
        assert f"`{service_id}`" in readme, f"README does not name the service {service_id}"
    for doc in DOCS:
        for named in set(re.findall(r"\bpdph-imaging-order-[a-z]+\b", text(doc))):
            assert named in services, f"{doc.name} names {named}, which is no service"


def test_commands_named_in_the_docs_exist() -> None:
    from typer.main import get_command

    from cds_tools.cli import cli

    group: Any = get_command(cli)
    commands = set(group.commands)
    knowledge = set(group.commands["knowledge"].commands)
    for doc in DOCS:
        body = text(doc)
        for command in set(re.findall(r"cds-service ([a-z][a-z-]*)", body)):
            assert command in commands, f"{doc.name} names `cds-service {command}`"
        for sub in set(re.findall(r"cds-service knowledge ([a-z]+)", body)):
            assert sub in knowledge, f"{doc.name} names `cds-service knowledge {sub}`"


def test_the_readme_try_it_posts_a_real_fixture_and_tells_its_answer(settings: Settings) -> None:
    section = text(README).split("### Try it", 1)[1].split("\n## ", 1)[0]
    fixture = re.search(r"cds-service render (fixtures/[\w.-]+\.json)", section)
    url = re.search(r"http://127\.0\.0\.1:8080/cds-services/([\w-]+)", section)
    assert fixture and url
    path = ROOT / fixture.group(1)
    assert path.parent == FIXTURES_DIR and path.is_file()
    content = json.loads(text(path))
    assert url.group(1) == content["service"]
    assert url.group(1) in load_services(settings.hooks_dir)
    [card] = content["expected"]["cards"]
    for stated in (
        f"`{card['scenario']}`",
        f"`{card['indicator']}`",
        f"`{card['draftOrder']}`",
        *(f"`{action}`" for suggestion in card["suggestions"] for action in suggestion),
        *(f"`{a['pamaRating']}`" for a in content["expected"]["systemActions"]),
    ):
        assert stated in section, f"README's Try it does not say {stated}"
