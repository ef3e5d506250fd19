# GPU: resources gpu=search.nproc (the SLURM plugin turns it into --gpus=N; with nproc > 1 `rome
# search` runs itself under torchrun --standalone in the job); retries resume from the checkpoint
# in state/ (a killed or preempted job continues where it stopped, bit-identical on the CPU).
rule search:
    input:
        stamp=stamp("search"),
        prepare=DATA,
    output:
        directory(f"{RUN}/search"),
    params:
        flags=run_flags,
        tracked=tracked("search"),
        code=CODE["search"],
    threads: 2
    retries: 2
    resources:
        gpu=gpus("search"),
    log:
        "logs/search/{dataset}-{space}-{algorithm}-seed{seed}.log",
    benchmark:
        "logs/benchmarks/search/{dataset}-{space}-{algorithm}-seed{seed}.tsv"
    conda:
        "../envs/rome.yaml"
    shell:
        "rome search {params.flags} --input prepare={input.prepare} --out {output} --threads {threads} > {log} 2>&1"
