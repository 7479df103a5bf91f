"""Pretrained weights from the hub, asked for only when the user wants them, and refused in seconds (not after a
minute of retries) when there is no network and no cached copy."""

from __future__ import annotations

import os
import socket

HUB = ("huggingface.co", 443)
CONNECT_SECONDS = 3.0
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")
OFFLINE_HINT = (
    "start from a weights file instead: on a machine with internet run `artkit weights save MODEL "
    "-o FILE` and pass --weights FILE here (docs/train.md, Offline); or train from scratch with "
    "--no-pretrained"
)


def hub_id(name: str) -> str | None:
    """The Hugging Face repository timm loads ``name``'s default pretrained weights from."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    return getattr(cfg, "hf_hub_id", None) if cfg is not None else None


def cached(name: str) -> bool:
    """True if the weights are in the local Hugging Face cache (so no network is needed)."""
    from huggingface_hub import try_to_load_from_cache

    repo = hub_id(name)
    return bool(repo) and any(isinstance(try_to_load_from_cache(repo, f), str) for f in WEIGHT_FILES)


def hub_reachable() -> bool:
    """A quick TCP connect to the hub; honours HF_HUB_OFFLINE=1."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        with socket.create_connection(HUB, timeout=CONNECT_SECONDS):
            return True
    except OSError:
        return False
