"""Render deploy/k8s with `kubectl kustomize` and validate the result offline.

CI has no cluster, so the manifests are checked the way an API server would see them: rendered
by the same Kustomize that `kubectl apply -k` uses, then validated against the Kubernetes
OpenAPI schemas bundled in kubernetes-validate (strict: unknown fields are errors). Custom
resources have no bundled schema; each kind we ship gets a hand-written check instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

K8S_DIR = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
# The newest schema set kubernetes-validate 1.37.0 bundles (it carries 1.25 … 1.37).
KUBERNETES_VERSION = "1.37"
# Components (kind: Component), `labels:` and path patches need a Kustomize from this decade;
# kubectl >= 1.27 embeds v5.
MIN_KUSTOMIZE = (5, 0)

Doc = dict[str, Any]


@lru_cache(maxsize=1)
def kubectl() -> str:
    """Path of a kubectl whose embedded Kustomize can render deploy/k8s, or fail the test."""
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail(
            "kubectl is not installed, so deploy/k8s cannot be rendered; run scripts/test.sh "
            "(it installs Debian's kubernetes-client when kubectl is missing) or install a "
            "kubectl >= 1.27 yourself"
        )
    out = subprocess.run(
        [path, "version", "--client", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    versions = json.loads(out.stdout or "{}")
    found = re.match(r"v?(\d+)\.(\d+)", versions.get("kustomizeVersion", ""))
    if found is None or (int(found[1]), int(found[2])) < MIN_KUSTOMIZE:
        client = versions.get("clientVersion", {}).get("gitVersion", "of unknown version")
        pytest.fail(
            f"{path} is kubectl {client} with Kustomize {found[0] if found else 'v2 or older'}; "
            f"deploy/k8s needs Kustomize v{MIN_KUSTOMIZE[0]}.{MIN_KUSTOMIZE[1]} or newer "
            "(kubectl >= 1.27) for components and labels: put a newer kubectl first on PATH"
        )
    return path


def render(target: Path) -> list[Doc]:
    """`kubectl kustomize target` as a list of documents."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize {target} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def write_overlay(
    directory: Path, *, resources: Sequence[str], components: Sequence[str] = ()
) -> Path:
    """A kustomization in `directory` on top of deploy/k8s paths (relative to K8S_DIR).

    Kustomize refuses absolute paths, so they are made relative to `directory`.
    """
    up = os.path.relpath(K8S_DIR, directory)
    lines = ["apiVersion: kustomize.config.k8s.io/v1beta1", "kind: Kustomization", "resources:"]
    lines += [f"  - {up}/{path}" for path in resources]
    if components:
        lines += ["components:", *[f"  - {up}/{path}" for path in components]]
    (directory / "kustomization.yaml").write_text("\n".join(lines) + "\n")
    return directory


def _check_servicemonitor(doc: Doc) -> list[str]:
    """The fields the Prometheus Operator needs to find and scrape the Service."""
    problems = []
    meta, spec = doc.get("metadata", {}), doc.get("spec", {})
    if not meta.get("name") or not meta.get("namespace"):
        problems.append("metadata.name and metadata.namespace are required")
    if not spec.get("selector", {}).get("matchLabels"):
        problems.append("spec.selector.matchLabels must select the Service")
    endpoints = spec.get("endpoints") or []
    if not endpoints:
        problems.append("spec.endpoints must list at least one endpoint")
    for endpoint in endpoints:
        if not endpoint.get("port") or not str(endpoint.get("path", "")).startswith("/"):
            problems.append(f"endpoint {endpoint} needs a named port and an absolute path")
    return problems


# Custom resources we ship, with the hand check that replaces schema validation.
CRD_CHECKS: dict[tuple[str, str], Callable[[Doc], list[str]]] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): _check_servicemonitor,
}


@lru_cache(maxsize=512)
def _validate_json(text: str) -> str | None:
    doc = json.loads(text)
    check = CRD_CHECKS.get((doc.get("apiVersion"), doc.get("kind")))
    if check is not None:
        problems = check(doc)
        return "; ".join(problems) or None
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError as exc:
        return f"no schema and no hand check: {exc.message}"
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(part) for part in exc.absolute_path)
        return f"{where}: {exc.message}"
    return None


def validate(doc: Doc) -> str | None:
    """The schema (or hand-check) error for one document, or None when it is valid."""
    return _validate_json(json.dumps(doc, sort_keys=True))


def workloads(docs: list[Doc]) -> Iterator[Doc]:
    """Objects that run pods for a long time."""
    return (d for d in docs if d["kind"] in {"Deployment", "StatefulSet", "DaemonSet"})


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    """The one object of that kind and name."""
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """matchLabels semantics: every selector pair is among the labels."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())
