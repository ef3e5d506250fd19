rule prepare:
    output:
        directory(f"{RESULTS}/{{dataset}}/prepare"),
    log:
        "logs/prepare/{dataset}.log",
    conda:
        "../envs/rome.yaml"
    shell:
        "rome prepare --set data.dataset={wildcards.dataset} 2> {log}"
