"""The Kubernetes manifests (deploy/kubernetes), rendered as `kustomize build` would (resources,
namespace, images, labels, strategic-merge patches of these files) and validated offline against the
Kubernetes 1.30 OpenAPI schemas shipped by kubernetes-validate, in strict mode (no unknown field)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "kubernetes"
K8S_VERSION = "1.30.0"


def _merge(base: Any, patch: Any) -> Any:
    """Strategic merge as these patches use it: maps merged, lists of named items merged by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = _merge(base[key], value) if key in base else value
        return merged
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(i, dict) and "name" in i for i in base + patch)
    ):
        by_name = {item["name"]: item for item in base}
        for item in patch:
            by_name[item["name"]] = _merge(by_name.get(item["name"], {}), item)
        return list(by_name.values())
    return patch


def build(folder: Path) -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    resources: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = folder / entry
        if path.is_dir():
            resources += build(path)
        else:
            resources += [r for r in yaml.safe_load_all(path.read_text()) if r]
    for label in kustomization.get("labels", []):
        for resource in resources:
            resource.setdefault("metadata", {}).setdefault("labels", {}).update(label["pairs"])
    for patch_entry in kustomization.get("patches", []):
        patch = yaml.safe_load((folder / patch_entry["path"]).read_text())
        for i, resource in enumerate(resources):
            if (resource["kind"], resource["metadata"]["name"]) == (
                patch["kind"],
                patch["metadata"]["name"],
            ):
                resources[i] = _merge(resource, patch)
    for image in kustomization.get("images", []):
        for resource in resources:
            for container in _containers(resource):
                if container["image"].split(":")[0] == image["name"]:
                    container["image"] = f"{image['newName']}:{image['newTag']}"
    if "namespace" in kustomization:
        for resource in resources:
            resource["metadata"]["namespace"] = kustomization["namespace"]
    return [copy.deepcopy(r) for r in resources]


def _containers(resource: dict[str, Any]) -> list[dict[str, Any]]:
    template = resource.get("spec", {}).get("template", {})
    return list(template.get("spec", {}).get("containers", []))


BUILDS = {"base": DEPLOY / "base", "production": DEPLOY / "overlays" / "production"}


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_manifests_are_valid_kubernetes(name: str) -> None:
    resources = build(BUILDS[name])
    kinds = sorted(r["kind"] for r in resources)
    assert kinds == sorted(
        [
            "Deployment",
            "Service",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "Job",
            "NetworkPolicy",
        ]
    )
    for resource in resources:
        kubernetes_validate.validate(resource, K8S_VERSION, strict=True)


def test_production_overlay_applies() -> None:
    resources = {r["kind"]: r for r in build(BUILDS["production"])}
    deployment = resources["Deployment"]
    [container] = _containers(deployment)
    assert container["image"] == "registry.example.org/pdph-imaging-cds:0.1.0"
    env = {e["name"]: e for e in container["env"]}
    assert env["WEB_CONCURRENCY"]["value"] == "4" and "DATABASE_URL" in env
    assert resources["HorizontalPodAutoscaler"]["spec"]["minReplicas"] == 4
    assert {r["metadata"]["namespace"] for r in resources.values()} == {"pdph-imaging"}


def test_deployment_is_hardened_and_probed() -> None:
    deployment = next(r for r in build(BUILDS["base"]) if r["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    secrets = {e["name"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert {"DATABASE_URL", "CDS_TRUSTED_ISSUERS", "CDS_FHIR_SERVERS"} <= secrets
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CDS_MIGRATE_ON_STARTUP"] == "false"  # the Job migrates, before the rollout
    job = next(r for r in build(BUILDS["base"]) if r["kind"] == "Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["cds-service", "migrate"]


def test_egress_allows_only_dns_postgres_and_https() -> None:
    policy = next(r for r in build(BUILDS["base"]) if r["kind"] == "NetworkPolicy")
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    ports = {(p["port"], p["protocol"]) for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert ports == {(53, "UDP"), (53, "TCP"), (5432, "TCP"), (443, "TCP")}
