"""artkit: the image-classification competition toolkit.

In Python (notebooks): ``artkit.train``, ``artkit.evaluate``, ``artkit.predict``, ``artkit.ensemble`` and
``artkit.demo_data`` (:mod:`artkit.cli.api`), imported on first use so that ``import artkit`` and the command
line stay instant.
"""

__version__ = "0.1.0"

API = ("train", "evaluate", "predict", "ensemble", "demo_data")


def __getattr__(name: str):
    if name in API:
        import importlib

        return getattr(importlib.import_module("artkit.cli.api"), name)
    raise AttributeError(f"module 'artkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *API])
