rule derive:
    input:
        f"{RUN}/search",
    output:
        directory(f"{RUN}/derive"),
    params:
        flags=run_flags,
    log:
        "logs/derive/{dataset}-{space}-{algorithm}-seed{seed}.log",
    conda:
        "../envs/rome.yaml"
    shell:
        "rome derive {params.flags} 2> {log}"
