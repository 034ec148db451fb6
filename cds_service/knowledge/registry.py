"""Hook service declarations: every `hooks/*.yaml` file declares one CDS service (id, hook, prefetch,
the knowledge folder it applies). Adding a service is adding a file, not editing the router."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from cds_service.errors import KnowledgeError
from cds_service.knowledge import Knowledge, load_knowledge

# libyaml's safe loader where PyYAML has it, as for the knowledge files (knowledge/load.py): every
# app start reads the declarations, and the pure-Python loader took about 1 ms a file.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

PREFETCH_RESOURCE_TYPES = (
    "Patient",
    "Procedure",
    "Condition",
    "Observation",
    "DiagnosticReport",
    "ImagingStudy",
)


class ServiceDeclaration(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    hook: Literal["order-select", "order-sign"]
    title: str
    description: str
    usageRequirements: str | None = None
    knowledge: str
    evaluate: Literal["selections", "all-draft-orders"]
    prefetch: dict[str, str]
    # Prefetch keys the service can decide without (HAPI's "omit" failure policy): when neither
    # prefetched nor fetchable they are left out, never a 412. The others are required.
    optional_prefetch: list[str] = []

    @field_validator("prefetch")
    @classmethod
    def _templates_are_fhir_queries(cls, prefetch: dict[str, str]) -> dict[str, str]:
        for key, template in prefetch.items():
            resource_type = template.split("?", 1)[0].split("/", 1)[0]
            if resource_type not in PREFETCH_RESOURCE_TYPES:
                raise ValueError(f"prefetch {key!r} must query one of {PREFETCH_RESOURCE_TYPES}")
        return prefetch

    @field_validator("optional_prefetch")
    @classmethod
    def _optional_keys_exist(cls, keys: list[str], info: ValidationInfo) -> list[str]:
        unknown = set(keys) - set(info.data.get("prefetch", {}))
        if unknown:
            raise ValueError(f"optional_prefetch names no prefetch template: {sorted(unknown)}")
        return keys

    def discovery_entry(self) -> dict[str, object]:
        entry: dict[str, object] = {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "prefetch": dict(self.prefetch),
        }
        if self.usageRequirements:
            entry["usageRequirements"] = self.usageRequirements
        return entry


class HookService:
    """A declared service together with the compiled knowledge it applies."""

    def __init__(self, declaration: ServiceDeclaration, knowledge: Knowledge) -> None:
        self.declaration = declaration
        self.knowledge = knowledge

    @property
    def id(self) -> str:
        return self.declaration.id


def load_services(hooks_dir: Path) -> dict[str, HookService]:
    """Read every declaration under `hooks_dir`; knowledge folders shared by several services are
    loaded once."""
    knowledge_cache: dict[str, Knowledge] = {}
    services: dict[str, HookService] = {}
    for path in sorted(hooks_dir.glob("*.yaml")):
        try:
            with path.open(encoding="utf-8") as handle:
                declaration = ServiceDeclaration.model_validate(yaml.load(handle, Loader=_LOADER))
        except yaml.YAMLError:
            raise KnowledgeError(f"{path.name}: not valid YAML") from None
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            key = ".".join(str(p) for p in first["loc"]) or "(top level)"
            raise KnowledgeError(f"{path.name}: {key}: {first['msg']}") from None
        if declaration.id in services:
            raise KnowledgeError(f"{path.name}: duplicate service id {declaration.id}")
        if declaration.knowledge not in knowledge_cache:
            knowledge_cache[declaration.knowledge] = load_knowledge(
                hooks_dir / declaration.knowledge
            )
        services[declaration.id] = HookService(declaration, knowledge_cache[declaration.knowledge])
    if not services:
        raise KnowledgeError(f"no hook service declared under {hooks_dir}")
    return services
