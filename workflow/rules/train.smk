rule train:
    input:
        f"{RESULTS}/{{dataset}}/prepare",
        f"{RUN}/derive",
    output:
        directory(f"{RUN}/train"),
    params:
        flags=run_flags,
    resources:
        gpu=1,
    log:
        "logs/train/{dataset}-{space}-{algorithm}-seed{seed}.log",
    conda:
        "../envs/rome.yaml"
    shell:
        "rome train {params.flags} 2> {log}"
