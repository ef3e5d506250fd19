rule aggregate:
    input:
        all_runs("search"),
        all_runs("derive"),
        all_runs("train"),
        all_runs("evaluate"),
    output:
        f"{REPORTS}/summary.csv",
        f"{REPORTS}/runs.csv",
        f"{REPORTS}/aggregate.json",
        f"{REPORTS}/metrics.json",
        f"{REPORTS}/plots/search_history.csv",
        f"{REPORTS}/plots/train_summary.csv",
    params:
        flags=PARAMS_FLAG,
        tracked=tracked("aggregate"),
        code=CODE["aggregate"],
    threads: 1
    log:
        "logs/aggregate.log",
    conda:
        "../envs/rome.yaml"
    shell:
        "rome aggregate {params.flags}--out {REPORTS} > {log} 2>&1"
