# Helpers shared by the rules: config validation, the resolved params, sweep expansion, the `--set`
# flags that pin one run (the same flags dvc.yaml passes), and what makes a job stale: the
# resolved params each stage reads and the content hash of the code it imports (rome.pipeline), so
# Snakemake's `params` rerun trigger fires exactly when DVC calls the stage changed.
import os

from snakemake.utils import validate

from rome.config import read_params_file, resolve, schema_path
from rome.paths import stage_dir, state_root
from rome.pipeline.fingerprint import code_digest, params_digest, run_params, write_stamp
from rome.pipeline.spec import STAGES

# `snakemake --configfile other.yaml` runs another params file: the rules pass it on to rome.
# (Snakemake 9 hands the config files over as Path objects; rome takes the name as text.)
PARAMS_FILE = str(workflow.overwrite_configfiles[-1]) if workflow.overwrite_configfiles else "params.yaml"
PARAMS_FLAG = "" if PARAMS_FILE == "params.yaml" else f"--params {PARAMS_FILE} "

# Snakemake merges --configfile over params.yaml; the rome calls read PARAMS_FILE alone, so the
# graph must be built from that file alone too (else keys only params.yaml sets leak into it).
# read_params_file, not Snakemake's `config`: its YAML 1.1 reads `1e6` as a string (rome reads YAML 1.2).
RUN_CONFIG = read_params_file(PARAMS_FILE)
validate(RUN_CONFIG, str(schema_path()))
PARAMS = resolve(RUN_CONFIG, source=PARAMS_FILE)
SWEEP = PARAMS["sweep"]
RESULTS = PARAMS["results_dir"]
RUN = f"{RESULTS}/{{dataset}}/{{space}}/{{algorithm}}/seed{{seed}}"
DATA = f"{RESULTS}/{{dataset}}/prepare"
REPORTS = str(stage_dir(PARAMS, "aggregate"))
CODE = {stage: code_digest(stage) for stage in STAGES}
CODE_TABLE = code_digest("table")  # the paper-table reports (workflow/rules/tables.smk)


wildcard_constraints:
    dataset="|".join(SWEEP["datasets"]),
    space="|".join(SWEEP["spaces"]),
    algorithm="|".join(SWEEP["algorithms"]),
    seed=r"\d+",


def run_flags(wildcards):
    """The --set flags that select one run of the sweep."""
    return PARAMS_FLAG + (
        f"--set data.dataset={wildcards.dataset} --set search.space={wildcards.space} "
        f"--set search.algorithm={wildcards.algorithm} --set seed={wildcards.seed}"
    )


def tracked(stage):
    """params: entry of a rule: digest of the resolved params the job reads (presets included)."""

    def digest(wildcards):
        w = dict(wildcards)
        params = PARAMS if "dataset" not in w else run_params(
            PARAMS, w["dataset"], w.get("space"), w.get("algorithm"), w.get("seed"))
        return params_digest(params, stage)

    return digest


def stamp(stage):
    """input: of a rule: its provenance stamp (rome.pipeline.fingerprint.write_stamp), so an output made
    by DVC or an earlier run with other params or code is rebuilt, not served (Snakemake has no
    metadata of outputs it did not make)."""

    def path(wildcards):
        w = dict(wildcards)
        params = PARAMS if "dataset" not in w else run_params(
            PARAMS, w["dataset"], w.get("space"), w.get("algorithm"), w.get("seed"))
        name = "-".join(str(w[k]) for k in ("dataset", "space", "algorithm", "seed") if k in w) or "all"
        return str(write_stamp(state_root(PARAMS) / "snakemake" / stage / f"{name}.json", params, stage,
                               stage_dir(params, stage)))

    return path


def all_runs(stage):
    """Every run folder of a stage over the sweep."""
    return expand(
        f"{RUN}/{stage}",
        dataset=SWEEP["datasets"],
        space=SWEEP["spaces"],
        algorithm=SWEEP["algorithms"],
        seed=SWEEP["seeds"],
    )


def gpus(stage):
    """resources: gpu of search / train: one per process of the run (search.nproc / train.nproc;
    `rome` itself then runs under torchrun inside the job)."""

    def count(wildcards):
        return int(run_params(PARAMS, wildcards.dataset, wildcards.space, wildcards.algorithm,
                              wildcards.seed)[stage]["nproc"])

    return count


def torch_threads(cores):
    """A rule's threads: one per core Snakemake grants (rome passes them to torch)."""
    return max(1, cores)


# ----- the paper tables (workflow/rules/tables.smk): lookups in rome.tables.snake
from rome.tables import snake as tables

TRUN = "tables/runs/{tscale}/{trun}/seed{tseed}"


def table_upstream(stage):
    """Named inputs of a table run's stage: its upstream folders."""
    return lambda w: tables.upstream(w.tscale, w.trun, w.tseed, stage)


def table_cmd(stage):
    """The rome call of a table run's stage (the same string the generated dvc.yaml holds)."""
    return lambda w: tables.command(w.tscale, w.trun, w.tseed, stage)
