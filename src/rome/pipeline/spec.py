"""The stage table: what each stage reads (params, upstream artifacts, code) and writes.

dvc.yaml (``rome pipeline --write``) and the Snakemake rules (workflow/rules/common.smk) are both
built from this table, so the two engines cannot see different things; ``tests/test_graph_parity.py``
checks that they agree and ``tests/test_staleness.py`` that they go stale exactly when they should.

Params are tracked per section and per layer: a stage's sections are read from ``params.yaml`` *and*
from the two preset files that feed them (``default.yaml`` and the selected ``<preset>.yaml``),
so editing a preset value outdates exactly the stages that read it. Top-level scalars
(``seed``, ``device``, ``deterministic``) are tracked in params.yaml alone: it always sets them,
so a preset's value for them never reaches a stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PRESET_DIR = "src/rome/presets"
PUBLISHED_GENOTYPES = "src/rome/genotype/published"  # train.genotype names resolve here (rome.genotype.named)
BASE_PRESET_FILE = f"{PRESET_DIR}/default.yaml"
# what every params file the pipeline reads must declare (DVC refuses a stage whose params key is absent)
TOP_LEVEL = ("preset", "seed", "device", "deterministic")
SECTIONS = ("data", "search", "derive", "train", "evaluate", "sweep")
PRESET_SECTIONS = ("data", "search", "derive", "train", "evaluate")


@dataclass(frozen=True)
class Output:
    """One declared output of a stage, relative to the stage folder (``kind``: out, metric or plot)."""

    path: str
    kind: str = "out"
    x: str | None = None
    y: str | None = None
    template: str | None = None


@dataclass(frozen=True)
class StageSpec:
    """One pipeline stage. ``scope``: once per ``dataset``, per sweep ``run``, or once (``all``)."""

    name: str
    scope: str
    sections: tuple[str, ...]
    top_level: tuple[str, ...]
    upstream: tuple[str, ...]
    outputs: tuple[Output, ...]
    extra_deps: tuple[str, ...] = ()
    gpu: bool = False
    resumable: bool = False
    local: bool = False
    params_from_presets: bool = field(default=True)


STAGES: dict[str, StageSpec] = {s.name: s for s in (
    StageSpec("prepare", "dataset", ("data",), ("preset",), (),
              (Output("data.safetensors"), Output("manifest.json")), local=True),
    StageSpec("search", "run", ("search",), ("preset", "device", "deterministic"), ("prepare",),
              (Output("arch.safetensors"), Output("search.json"), Output("history.json"), Output("checkpoint.pt"),
               Output("metrics.json", "metric"),
               Output("history.csv", "plot", x="epoch", y="val_acc"),
               Output("probabilities.csv", "plot", x="epoch", y="p", template="series"),
               Output("curves.png", "plot"), Output("alpha.png", "plot")),
              gpu=True, resumable=True),
    StageSpec("derive", "run", ("derive",), ("preset",), ("search",),
              (Output("genotype.json"), Output("genotype.txt"), Output("cells"),
               Output("metrics.json", "metric")), local=True),
    StageSpec("train", "run", ("train",), ("preset", "device", "deterministic"), ("prepare", "derive"),
              (Output("model.safetensors"), Output("model.json"),
               Output("metrics.json", "metric"),
               Output("summary.csv", "plot", x="epoch", y="eval_top1"), Output("curves.png", "plot")),
              extra_deps=(PUBLISHED_GENOTYPES,), gpu=True, resumable=True),
    StageSpec("evaluate", "run", ("evaluate",), ("preset", "device", "deterministic"), ("prepare", "train"),
              (Output("evaluate.json"), Output("metrics.json", "metric"))),
    StageSpec("aggregate", "all", ("sweep",), (), ("search", "derive", "train", "evaluate"),
              (Output("summary.csv"), Output("runs.csv"), Output("aggregate.json"),
               Output("metrics.json", "metric"),
               Output("plots/search_history.csv", "plot", x="epoch", y="val_acc", template="series"),
               Output("plots/train_summary.csv", "plot", x="epoch", y="eval_top1", template="series")),
              local=True, params_from_presets=False),
)}


def preset_file(preset: str) -> str:
    return f"{PRESET_DIR}/{preset}.yaml"
