rule prepare:
    output:
        directory(f"{RESULTS}/{{dataset}}/prepare"),
    params:
        flags=PARAMS_FLAG,
    log:
        "logs/prepare/{dataset}.log",
    conda:
        "../envs/rome.yaml"
    shell:
        "rome prepare {params.flags}--set data.dataset={wildcards.dataset} 2> {log}"
