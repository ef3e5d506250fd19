rule prepare:
    input:
        stamp=stamp("prepare"),
    output:
        directory(DATA),
    params:
        flags=PARAMS_FLAG,
        tracked=tracked("prepare"),
        code=CODE["prepare"],
    threads: 1
    log:
        "logs/prepare/{dataset}.log",
    benchmark:
        "logs/benchmarks/prepare/{dataset}.tsv"
    conda:
        "../envs/rome.yaml"
    shell:
        "rome prepare {params.flags}--set data.dataset={wildcards.dataset} --out {output} > {log} 2>&1"
