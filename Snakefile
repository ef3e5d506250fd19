# The pipeline for Snakemake: the same stages as dvc.yaml, as `rome <stage>` shell calls.
# Config is params.yaml, validated with the one schema the CLI uses; the sweep in it expands
# into wildcards. Local: `snakemake --cores 2`; SLURM: `snakemake --profile workflow/profiles/slurm`.
from snakemake.utils import min_version

min_version("8.0")


configfile: "params.yaml"


include: "workflow/rules/common.smk"


rule all:
    input:
        f"{REPORTS}/summary.csv",
        f"{REPORTS}/runs.csv",
        f"{REPORTS}/metrics.json",
    default_target: True



include: "workflow/rules/prepare.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/derive.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/aggregate.smk"
