"""deploy/k8s renders with `kubectl kustomize` and every manifest passes strict schema
validation; what the tests assert is what an operator relies on: the vLLM command line is valid
for the pinned vLLM, each overlay asks for its accelerator by HAMi's resource names, weights get
one claim per replica, every long-running container has probes, no Secret carries a real value
and only the assistant may reach the model, the database and the vector store."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import pytest

from tests.deploy.k8s_targets import (
    FULL_STACK,
    MODELS,
    PLACEHOLDER,
    REMOVED_FLAGS,
    TARGETS,
    VLLM_FLAGS,
    pod,
    vllm,
    vllm_flags,
)
from tests.deploy.kustomize import (
    K8S_DIR,
    Doc,
    find,
    render,
    selects,
    validate,
    workloads,
    write_overlay,
)


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Doc]]:
    return {target: render(K8S_DIR / target) for target in TARGETS}


def test_every_overlay_is_tested() -> None:
    on_disk = {f"overlays/{p.name}" for p in (K8S_DIR / "overlays").iterdir() if p.is_dir()}
    assert on_disk == {t for t in MODELS if t.startswith("overlays/")}


@pytest.mark.parametrize("target", TARGETS)
def test_every_manifest_passes_strict_schema_validation(rendered, target) -> None:
    errors = [
        f"{d['kind']}/{d['metadata'].get('name')}: {error}"
        for d in rendered[target]
        if (error := validate(d)) is not None
    ]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("target", MODELS)
def test_vllm_command_line_is_valid_for_the_pinned_vllm(rendered, target) -> None:
    expected = MODELS[target]
    _, container = vllm(rendered[target])
    model, flags = vllm_flags(container)
    assert model == expected.checkpoint
    assert not set(flags) & REMOVED_FLAGS
    assert set(flags) <= VLLM_FLAGS, f"unknown flags: {set(flags) - VLLM_FLAGS}"
    assert flags["--served-model-name"] == "qwen3"
    assert "--enable-auto-tool-choice" in flags and flags["--tool-call-parser"] == "hermes"
    assert "--enable-prefix-caching" in flags
    assert int(flags["--max-model-len"] or 0) >= 8192
    assert 0.5 <= float(flags["--gpu-memory-utilization"] or 0) <= 0.95
    # Instruct-2507 models never think: vLLM 0.33's qwen3 parser would file their answers under
    # `reasoning`. Hybrid models (Qwen3-8B) need it to split thoughts from answers.
    assert flags.get("--reasoning-parser") == ("qwen3" if expected.thinking else None)
    # One tensor-parallel rank per requested device.
    count = next(v for k, v in expected.accelerators.items() if not re.search(r"mem|core", k))
    assert flags["--tensor-parallel-size"] == count
    assert container["image"].startswith(expected.image)
    # `vllm serve`, directly or after a vendor's environment script (Hygon's vHCU setup).
    command = container["command"]
    assert command == ["vllm", "serve"] or (
        command[:2] == ["/bin/bash", "-c"] and command[2].endswith('exec vllm serve "$@"')
    )
    assert container["image"].endswith(PLACEHOLDER) or re.search(
        r":v\d+\.\d+\.\d+$", container["image"]
    )


@pytest.mark.parametrize("target", MODELS)
def test_accelerator_resources_use_hami_names(rendered, target) -> None:
    _, container = vllm(rendered[target])
    limits = container["resources"]["limits"]
    devices = {
        k: str(v) for k, v in limits.items() if k not in {"cpu", "memory", "ephemeral-storage"}
    }
    assert devices == MODELS[target].accelerators
    # Extended resources are requested through limits; HAMi's webhook sets the scheduler.
    assert not set(devices) & set(container["resources"].get("requests", {}))
    assert all("schedulerName" not in pod(w) for w in workloads(rendered[target]))


@pytest.mark.parametrize("target", MODELS)
def test_model_storage_shm_and_startup_window(rendered, target) -> None:
    statefulset, container = vllm(rendered[target])
    spec = pod(statefulset)
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HF_HOME"].startswith(mounts["model-cache"] + "/")
    (shm,) = [v for v in spec["volumes"] if v["name"] == "dshm"]
    assert mounts["dshm"] == "/dev/shm"
    assert shm["emptyDir"]["medium"] == "Memory" and shm["emptyDir"]["sizeLimit"]
    startup = container["startupProbe"]
    assert startup["httpGet"]["path"] == "/health"
    assert (
        startup["periodSeconds"] * startup["failureThreshold"]
        >= MODELS[target].startup_minutes * 60
    )
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}


@pytest.mark.parametrize("target", TARGETS)
def test_one_claim_per_replica_and_no_duplicate_claims(rendered, target) -> None:
    docs = rendered[target]
    assert not [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    for statefulset in (d for d in docs if d["kind"] == "StatefulSet"):
        claims = {t["metadata"]["name"] for t in statefulset["spec"]["volumeClaimTemplates"]}
        spec = pod(statefulset)
        declared = {v["name"] for v in spec.get("volumes", [])}
        mounted = {m["name"] for c in spec["containers"] for m in c.get("volumeMounts", [])}
        assert claims and claims <= mounted and not claims & declared


@pytest.mark.parametrize("target", TARGETS)
def test_every_long_running_container_has_probes_and_resources(rendered, target) -> None:
    for workload in workloads(rendered[target]):
        for container in pod(workload)["containers"]:
            missing = {"startupProbe", "readinessProbe", "livenessProbe"} - set(container)
            assert not missing, f"{workload['metadata']['name']}/{container['name']}: {missing}"
            assert container["resources"].get("requests") and container["resources"].get("limits")


@pytest.mark.parametrize("target", TARGETS)
def test_no_secret_holds_a_real_value(rendered, target) -> None:
    secrets = [d for d in rendered[target] if d["kind"] == "Secret"]
    for secret in secrets:
        values = list(secret.get("stringData", {}).values())
        values += [base64.b64decode(v).decode() for v in secret.get("data", {}).values()]
        assert values and set(values) == {PLACEHOLDER}, secret["metadata"]["name"]
    assert secrets or target == "base/model"


@pytest.mark.parametrize("target", FULL_STACK)
def test_only_the_assistant_reaches_model_database_and_vectors(rendered, target) -> None:
    docs = rendered[target]
    assistant = find(docs, "Deployment", "dadang")["spec"]["template"]["metadata"]["labels"]
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    for kind, name, port in [
        ("StatefulSet", "qwen3", 8000),
        ("StatefulSet", "postgres", 5432),
        ("StatefulSet", "chroma", 8000),
    ]:
        labels = find(docs, kind, name)["spec"]["template"]["metadata"]["labels"]
        guarding = [p for p in policies if selects(p["spec"]["podSelector"]["matchLabels"], labels)]
        assert guarding, f"no NetworkPolicy guards {name}"
        for policy in guarding:
            assert "Ingress" in policy["spec"]["policyTypes"]
            for rule in policy["spec"]["ingress"]:
                assert [p["port"] for p in rule["ports"]] == [port]
                for peer in rule["from"]:
                    assert set(peer) == {"podSelector"}, f"{name} is open to {peer}"
                    assert selects(peer["podSelector"]["matchLabels"], assistant)
                    assert not selects(peer["podSelector"]["matchLabels"], labels)


@pytest.mark.parametrize("target", FULL_STACK)
def test_assistant_wiring(rendered, target) -> None:
    docs = rendered[target]
    deployment = find(docs, "Deployment", "dadang")
    spec = pod(deployment)
    (container,) = spec["containers"]
    config = find(docs, "ConfigMap", "dadang-config")["data"]
    env = {e["name"]: e for e in container["env"]}
    model = find(docs, "Service", "qwen3")["spec"]
    _, flags = vllm_flags(vllm(docs)[1])
    assert config["DADANG_HTTP_HOST"] == "0.0.0.0"
    assert config["DADANG_LLM_BASE_URL"] == f"http://qwen3:{model['ports'][0]['port']}/v1"
    assert config["DADANG_LLM_MODEL"] == flags["--served-model-name"]
    assert config["DADANG_CHROMA_URL"] == "http://chroma:8000"
    assert (
        env["DADANG_DATABASE_URL"]["value"]
        == "postgresql://dadang:$(POSTGRES_PASSWORD)@postgres:5432/dadang"
    )
    assert list(env).index("POSTGRES_PASSWORD") < list(env).index("DADANG_DATABASE_URL")
    for key in ("DADANG_TELEGRAM_TOKEN", "DADANG_SECRET_KEY", "DADANG_LLM_API_KEY"):
        assert env[key]["valueFrom"]["secretKeyRef"]["name"] == "dadang-secrets"
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert (
        spec["securityContext"]["runAsNonRoot"]
        and container["securityContext"]["readOnlyRootFilesystem"]
    )
    home = next(m for m in container["volumeMounts"] if m["mountPath"] == config["DADANG_HOME"])
    assert "emptyDir" in next(v for v in spec["volumes"] if v["name"] == home["name"])
    budget = find(docs, "PodDisruptionBudget", "dadang")["spec"]
    assert selects(
        budget["selector"]["matchLabels"], deployment["spec"]["template"]["metadata"]["labels"]
    )
    assert deployment["spec"]["replicas"] == (1 if target == "overlays/small" else 2)


def test_assistant_runs_dadang_run_as_the_images_user(rendered) -> None:
    dockerfile = (K8S_DIR.parent / "docker" / "Dockerfile").read_text()
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", dockerfile, re.M)[1])
    uid = int(re.search(r"^USER (\d+)", dockerfile, re.M)[1])
    spec = pod(find(rendered["base"], "Deployment", "dadang"))
    (container,) = spec["containers"]
    assert "command" not in container and entrypoint[-1:] + container["args"] == ["dadang", "run"]
    assert spec["securityContext"]["runAsUser"] == uid


@pytest.mark.parametrize("target", FULL_STACK)
def test_every_service_selects_a_workload(rendered, target) -> None:
    docs = rendered[target]
    pods = [w["spec"]["template"]["metadata"]["labels"] for w in workloads(docs)]
    for service in (d for d in docs if d["kind"] == "Service"):
        name, selector = service["metadata"]["name"], service["spec"]["selector"]
        assert any(selects(selector, labels) for labels in pods), f"Service {name} selects nothing"


def test_servicemonitor_and_offline_components(tmp_path: Path) -> None:
    overlay = write_overlay(
        tmp_path,
        resources=["overlays/nvidia-hami"],
        components=["components/servicemonitor", "components/offline-weights"],
    )
    docs = render(overlay)
    assert [e for d in docs if (e := validate(d))] == []
    monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
    services = [d for d in docs if d["kind"] == "Service"]
    for monitor in monitors:
        (service,) = [
            s
            for s in services
            if selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
        ]
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= {
            p["name"] for p in service["spec"]["ports"]
        }
    assert {m["metadata"]["name"] for m in monitors} == {"qwen3", "dadang"}
    statefulset, container = vllm(docs)
    assert "volumeClaimTemplates" not in statefulset["spec"]
    (cache,) = [v for v in pod(statefulset)["volumes"] if v["name"] == "model-cache"]
    assert cache["hostPath"]["path"]
    assert {"name": "HF_HUB_OFFLINE", "value": "1"} in container["env"]


def _readme_overlays() -> list[str]:
    blocks = re.findall(
        r"```yaml\n(# my-overlay/kustomization\.yaml\n.*?)```",
        (K8S_DIR / "README.md").read_text(),
        re.S,
    )
    assert len(blocks) == 2, "README lost its overlay examples"
    return blocks


@pytest.mark.parametrize(
    "example", _readme_overlays(), ids=["secret-generator", "external-database"]
)
def test_readme_overlay_examples_render(tmp_path: Path, example: str) -> None:
    overlay = tmp_path / "local" / "my-overlay"
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text(
        example.replace("../../", os.path.relpath(K8S_DIR, overlay) + "/")
    )
    (overlay / "secrets.env").write_text(
        "telegram-token=123:abc\nsecret-key=a2V5\ndb-password=0123abcd\nllm-api-key=token\n"
    )
    docs = render(overlay)
    assert [e for d in docs if (e := validate(d))] == []
    secret = find(docs, "Secret", "dadang-secrets")
    assert secret["metadata"]["namespace"] == "dadang"
    env = {
        e["name"]: e.get("value")
        for e in pod(find(docs, "Deployment", "dadang"))["containers"][0]["env"]
    }
    if "secretGenerator" in example:
        values = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
        assert values["db-password"] == "0123abcd" and PLACEHOLDER not in values.values()
    else:
        assert not [d for d in docs if d["metadata"]["name"].startswith("postgres")]
        assert "@db.example.internal:5432/" in env["DADANG_DATABASE_URL"]
