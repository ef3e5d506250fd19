rule search:
    input:
        f"{RESULTS}/{{dataset}}/prepare",
    output:
        directory(f"{RUN}/search"),
    params:
        flags=run_flags,
    resources:
        gpu=1,
    log:
        "logs/search/{dataset}-{space}-{algorithm}-seed{seed}.log",
    conda:
        "../envs/rome.yaml"
    shell:
        "rome search {params.flags} 2> {log}"
