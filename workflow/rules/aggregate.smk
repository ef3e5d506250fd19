rule aggregate:
    input:
        all_runs("evaluate"),
        all_runs("derive"),
    output:
        f"{REPORTS}/summary.csv",
        f"{REPORTS}/runs.csv",
        f"{REPORTS}/metrics.json",
    params:
        flags=PARAMS_FLAG,
    log:
        "logs/aggregate.log",
    conda:
        "../envs/rome.yaml"
    shell:
        "rome aggregate {params.flags}2> {log}"
