rule aggregate:
    input:
        all_runs("search"),
        all_runs("derive"),
        all_runs("train"),
        all_runs("evaluate"),
        stamp=stamp("aggregate"),
    output:
        runs=f"{REPORTS}/runs.csv",
        summary=f"{REPORTS}/summary.csv",
        record=f"{REPORTS}/aggregate.json",
        metrics=f"{REPORTS}/metrics.json",
        search_plot=f"{REPORTS}/plots/search_history.csv",
        train_plot=f"{REPORTS}/plots/train_summary.csv",
    params:
        flags=PARAMS_FLAG,
        out=lambda w, output: os.path.dirname(output.summary),
        tracked=tracked("aggregate"),
        code=CODE["aggregate"],
    threads: 1
    log:
        "logs/aggregate.log",
    conda:
        "../envs/rome.yaml"
    shell:
        "rome aggregate {params.flags}--out {params.out} > {log} 2>&1"
