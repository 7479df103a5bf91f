"""docs/options.md, generated from the option dataclasses: ``python -m artkit.cli.docs docs/options.md``."""

from __future__ import annotations

from artkit.cli.options import options_markdown


def options_doc() -> str:
    """docs/options.md: every command's options, generated from the config dataclasses."""
    from artkit.demo import DemoConfig
    from artkit.engine.config import RunsConfig, TrainConfig
    from artkit.models.config import WeightsSaveConfig, WeightsShowConfig
    from artkit.predict.config import EnsembleConfig, EvalConfig, ExplainConfig, PredictConfig
    from artkit.qa.config import CleanConfig, EdaConfig

    head = (
        "# Options\n\nEvery option of every command, with its default and meaning. This page is generated from the "
        "option dataclasses (`python -m artkit.cli.docs docs/options.md`), the same source as `--help`, "
        "`--config` files and each run's `config.yaml`; a test keeps it current.\n\n"
    )
    sections = [
        (TrainConfig, "artkit train"),
        (PredictConfig, "artkit predict"),
        (EvalConfig, "artkit eval"),
        (EnsembleConfig, "artkit ensemble"),
        (EdaConfig, "artkit eda"),
        (CleanConfig, "artkit clean"),
        (ExplainConfig, "artkit explain"),
        (RunsConfig, "artkit runs"),
        (WeightsSaveConfig, "artkit weights save"),
        (WeightsShowConfig, "artkit weights show"),
        (DemoConfig, "artkit demo"),
    ]
    return head + "\n".join(options_markdown(cls, title) for cls, title in sections)


if __name__ == "__main__":
    import sys

    from artkit.writer import write_text

    write_text(sys.argv[1], options_doc())
