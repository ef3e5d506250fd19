rule evaluate:
    input:
        stamp=stamp("evaluate"),
        prepare=DATA,
        train=f"{RUN}/train",
    output:
        directory(f"{RUN}/evaluate"),
    params:
        flags=run_flags,
        tracked=tracked("evaluate"),
        code=CODE["evaluate"],
    threads: 1
    log:
        "logs/evaluate/{dataset}-{space}-{algorithm}-seed{seed}.log",
    benchmark:
        "logs/benchmarks/evaluate/{dataset}-{space}-{algorithm}-seed{seed}.tsv"
    conda:
        "../envs/rome.yaml"
    shell:
        "rome evaluate {params.flags} --input prepare={input.prepare} --input train={input.train} "
        "--out {output} --threads {threads} > {log} 2>&1"
