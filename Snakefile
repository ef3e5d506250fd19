# The pipeline for Snakemake: the same stages as dvc.yaml, as `rome <stage>` shell calls, built from
# the same stage table (rome.pipeline). Config is params.yaml, validated with the one schema the CLI
# uses; the sweep in it expands into wildcards. A job reruns when its inputs, the resolved params it
# reads (presets included) or the code it imports change (`params: tracked / code`).
# Local: `snakemake --cores 2`; SLURM: `snakemake --profile workflow/profiles/slurm`.
from snakemake.utils import min_version

min_version("9.0")


configfile: "params.yaml"


include: "workflow/rules/common.smk"


# small, quick stages run on the submitting host, not as cluster jobs
localrules:
    all,
    prepare,
    derive,
    aggregate,
    table_prepare,
    table_derive,
    table_report,


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
include: "workflow/rules/tables.smk"
