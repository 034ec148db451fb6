"""A second opinion on the service's responses from a client library: every fixture's response,
evaluated in-process, validated by HealthChain's `CDSResponse` model (docs/integration.md).

HealthChain pins an older FastAPI, so it lives in a virtual environment of its own:

    python3 -m venv /tmp/healthchain && /tmp/healthchain/bin/pip install healthchain==0.16.1
    .venv/bin/python tools/healthchain_check.py --healthchain-python /tmp/healthchain/bin/python

It prints the counts docs/integration.md states (fixtures, cards, suggestions, system actions; a test
checks them against the fixtures) and each validation error HealthChain raises, with how many
responses it concerns. Exit 1 when HealthChain raises an error other than those given by --known."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Run by HealthChain's interpreter: validate each response, count the errors by location and type.
VALIDATE = """
import collections, json, sys
from pydantic import ValidationError
from healthchain.models.responses.cdsresponse import CDSResponse
errors = collections.Counter()
for response in json.load(open(sys.argv[1])):
    try:
        CDSResponse.model_validate(response)
    except ValidationError as exc:
        seen = set()
        for e in exc.errors():
            loc = ".".join("[]" if isinstance(p, int) else str(p) for p in e["loc"])
            seen.add(f"{loc.replace('.[]', '[]')}: {e['type']}")
        errors.update(seen)
print(json.dumps(errors))
"""


async def responses() -> list[dict[str, Any]]:
    from cds_service.config import Settings
    from cds_tools.fixtures import fixture_paths
    from cds_tools.replay import in_process_client, replay

    now = datetime.now(UTC)
    async with in_process_client(Settings(), now) as client:
        results = await replay(client, fixture_paths(), now)
    failed = [r.name for r in results if r.response is None]
    if failed:
        raise SystemExit(f"healthchain_check: no response for {', '.join(failed)}")
    return [r.response for r in results if r.response is not None]


def counts(answers: list[dict[str, Any]]) -> dict[str, int]:
    """What docs/integration.md states about the responses HealthChain was given."""
    cards = [card for answer in answers for card in answer.get("cards", [])]
    return {
        "fixtures": len(answers),
        "cards": len(cards),
        "suggestions": sum(len(card.get("suggestions", [])) for card in cards),
        "system actions": sum(len(answer.get("systemActions", [])) for answer in answers),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--healthchain-python", required=True, help="Python with healthchain")
    parser.add_argument(
        "--known",
        action="append",
        default=["cards[].links[].autoLaunchable: missing"],
        help="an error HealthChain is known to raise wrongly (location: type)",
    )
    args = parser.parse_args()

    answers = asyncio.run(responses())
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump(answers, file)
    done = subprocess.run(
        [args.healthchain_python, "-c", VALIDATE, file.name], capture_output=True, text=True
    )
    Path(file.name).unlink()
    if done.returncode != 0:
        raise SystemExit(f"healthchain_check: HealthChain failed: {done.stderr.strip()[-500:]}")
    errors: dict[str, int] = json.loads(done.stdout)
    print(", ".join(f"{n} {what}" for what, n in counts(answers).items()))
    for error, n in sorted(errors.items()):
        print(f"  {error}: in {n} response(s){' (known)' if error in args.known else ''}")
    if not errors:
        print("  HealthChain accepts every response")
    if set(errors) - set(args.known):
        sys.exit(1)


if __name__ == "__main__":
    main()
