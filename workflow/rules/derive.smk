rule derive:
    input:
        stamp=stamp("derive"),
        search=f"{RUN}/search",
    output:
        directory(f"{RUN}/derive"),
    params:
        flags=run_flags,
        tracked=tracked("derive"),
        code=CODE["derive"],
    threads: 1
    log:
        "logs/derive/{dataset}-{space}-{algorithm}-seed{seed}.log",
    benchmark:
        "logs/benchmarks/derive/{dataset}-{space}-{algorithm}-seed{seed}.tsv"
    conda:
        "../envs/rome.yaml"
    shell:
        "rome derive {params.flags} --input search={input.search} --out {output} > {log} 2>&1"
