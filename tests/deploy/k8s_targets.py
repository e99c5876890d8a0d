"""What each deploy/k8s target must serve, and the queries the tests ask of rendered manifests.

The table is the specification: a new overlay gets a row here, and
`test_every_overlay_is_tested` fails until it does.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.deploy.kustomize import Doc, find


@dataclass(frozen=True)
class Model:
    """What one target must serve, on what, from which image."""

    checkpoint: str
    accelerators: dict[str, str]
    image: str  # a prefix; domestic images are placeholders ending in REPLACE_ME
    thinking: bool = False
    startup_minutes: int = 30


QWEN3_30B = "Qwen/Qwen3-30B-A3B-Instruct-2507"
VLLM_IMAGE = "vllm/vllm-openai:v0.31.0"
SLICE_8B = "Qwen/Qwen3-8B"
MODELS = {
    "base/model": Model(QWEN3_30B, {"nvidia.com/gpu": "1"}, VLLM_IMAGE),
    "base": Model(QWEN3_30B, {"nvidia.com/gpu": "1"}, VLLM_IMAGE),
    "overlays/nvidia-hami": Model(
        f"{QWEN3_30B}-FP8",
        {"nvidia.com/gpu": "1", "nvidia.com/gpumem": "49152", "nvidia.com/gpucores": "60"},
        VLLM_IMAGE,
    ),
    "overlays/small": Model(
        SLICE_8B,
        {"nvidia.com/gpu": "1", "nvidia.com/gpumem": "24576", "nvidia.com/gpucores": "50"},
        VLLM_IMAGE,
        thinking=True,
    ),
    "overlays/qwen3-235b": Model(
        "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8",
        {"nvidia.com/gpu": "8"},
        VLLM_IMAGE,
        startup_minutes=120,
    ),
    "overlays/ascend": Model(
        SLICE_8B,
        {"huawei.com/Ascend910B3": "1", "huawei.com/Ascend910B3-memory": "32768"},
        "quay.io/ascend/vllm-ascend:v",
        thinking=True,
    ),
    "overlays/cambricon": Model(
        SLICE_8B,
        {
            "cambricon.com/vmlu": "1",
            "cambricon.com/mlu.smlu.vmemory": "50",
            "cambricon.com/mlu.smlu.vcore": "50",
        },
        "registry.example.com/cambricon/",
        thinking=True,
    ),
    "overlays/hygon": Model(
        SLICE_8B,
        {"hygon.com/hcunum": "1", "hygon.com/hcumem": "32768", "hygon.com/hcucores": "50"},
        "registry.example.com/hygon/",
        thinking=True,
    ),
    "overlays/metax": Model(
        SLICE_8B,
        {"metax-tech.com/sgpu": "1", "metax-tech.com/vcore": "50", "metax-tech.com/vmemory": "32"},
        "registry.example.com/metax/",
        thinking=True,
    ),
    "overlays/mthreads": Model(
        SLICE_8B,
        {"mthreads.com/vgpu": "1", "mthreads.com/sgpu-memory": "64", "mthreads.com/sgpu-core": "8"},
        "registry.example.com/mthreads/",
        thinking=True,
    ),
}
TARGETS = ["base/assistant", *MODELS]
FULL_STACK = ["base", *[t for t in MODELS if t.startswith("overlays/")]]

# Every flag the manifests use, each checked in vLLM v0.33.0 (engine/arg_utils.py,
# entrypoints/common/cli_args.py); anything else is a typo or a flag from another version.
VLLM_FLAGS = {
    "--served-model-name",
    "--host",
    "--port",
    "--max-model-len",
    "--gpu-memory-utilization",
    "--tensor-parallel-size",
    "--enable-prefix-caching",
    "--enable-auto-tool-choice",
    "--tool-call-parser",
    "--reasoning-parser",
    "--disable-custom-all-reduce",
}
REMOVED_FLAGS = {"--max-paddings", "--enable-reasoning", "--disable-log-requests"}
PLACEHOLDER = "REPLACE_ME"


def pod(doc: Doc) -> Doc:
    """The pod spec of a workload."""
    return doc["spec"]["template"]["spec"]


def vllm(docs: list[Doc]) -> tuple[Doc, Doc]:
    """The model StatefulSet and its vLLM container."""
    statefulset = find(docs, "StatefulSet", "qwen3")
    (container,) = [c for c in pod(statefulset)["containers"] if c["name"] == "vllm"]
    return statefulset, container


def vllm_flags(container: Doc) -> tuple[str, dict[str, str | None]]:
    """The served checkpoint and the flags (`--name` or `--name=value`) of `vllm serve`."""
    model, *rest = container["args"]
    flags: dict[str, str | None] = {}
    for arg in rest:
        assert arg.startswith("--"), f"{arg!r}: write flags as --name or --name=value"
        name, _, value = arg.partition("=")
        assert name not in flags, f"{name} given twice"
        flags[name] = value or None
    return model, flags
