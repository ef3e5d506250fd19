rule aggregate:
    input:
        all_runs("evaluate"),
        all_runs("derive"),
    output:
        "reports/summary.csv",
        "reports/runs.csv",
        "reports/metrics.json",
    log:
        "logs/aggregate.log",
    conda:
        "../envs/rome.yaml"
    shell:
        "rome aggregate 2> {log}"
