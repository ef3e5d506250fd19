rule evaluate:
    input:
        f"{RESULTS}/{{dataset}}/prepare",
        f"{RUN}/train",
    output:
        directory(f"{RUN}/evaluate"),
    params:
        flags=run_flags,
    log:
        "logs/evaluate/{dataset}-{space}-{algorithm}-seed{seed}.log",
    conda:
        "../envs/rome.yaml"
    shell:
        "rome evaluate {params.flags} 2> {log}"
