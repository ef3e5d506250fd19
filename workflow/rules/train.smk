# GPU and retries as for search: a retried job resumes from state/<run>/train_ckpt.
rule train:
    input:
        stamp=stamp("train"),
        prepare=DATA,
        derive=f"{RUN}/derive",
        genotypes="src/rome/genotype/published",
    output:
        directory(f"{RUN}/train"),
    params:
        flags=run_flags,
        tracked=tracked("train"),
        code=CODE["train"],
    threads: 2
    retries: 2
    resources:
        gpu=gpus("train"),
    log:
        "logs/train/{dataset}-{space}-{algorithm}-seed{seed}.log",
    benchmark:
        "logs/benchmarks/train/{dataset}-{space}-{algorithm}-seed{seed}.tsv"
    conda:
        "../envs/rome.yaml"
    shell:
        "rome train {params.flags} --input prepare={input.prepare} --input derive={input.derive} "
        "--out {output} --threads {threads} > {log} 2>&1"
