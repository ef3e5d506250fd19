# The paper tables (tables/*.yaml) as Snakemake targets: `snakemake --cores 2 reports/tables/<scale>/<name>.md`
# (or `rome table <name> --scale <scale> --engine snakemake`). The jobs are the same `rome` calls as
# the generated DVC stages (rome.tables.runs); a job reruns when its call (every --set flag: a row's
# override, the scale's preset) or the code it imports changes. Runs shared by tables run once.
wildcard_constraints:
    tscale="[a-z0-9_]+",
    trun=r"[A-Za-z0-9_]+-[a-z0-9_]+-[a-z0-9_]+-[0-9a-f]{10}",
    tdata=r"[A-Za-z0-9_]+-data-[0-9a-f]{10}",
    tseed=r"\d+",
    tname="[a-z0-9][a-z0-9_-]*",


rule table_prepare:
    output:
        directory("tables/runs/{tscale}/{tdata}/prepare"),
    params:
        cmd=lambda w: tables.prepare_command(w.tscale, w.tdata),
        code=CODE["prepare"],
    log:
        "logs/tables/{tscale}/{tdata}-prepare.log",
    conda:
        "../envs/rome.yaml"
    shell:
        "{params.cmd} > {log} 2>&1"


rule table_search:
    input:
        unpack(table_upstream("search")),
    output:
        directory(f"{TRUN}/search"),
    params:
        cmd=table_cmd("search"),
        code=CODE["search"],
    threads: 2
    resources:
        gpu=lambda w: tables.gpus(w.tscale, w.trun, w.tseed, "search"),
    log:
        "logs/tables/{tscale}/{trun}-seed{tseed}-search.log",
    conda:
        "../envs/rome.yaml"
    shell:
        "{params.cmd} --threads {threads} > {log} 2>&1"


rule table_derive:
    input:
        unpack(table_upstream("derive")),
    output:
        directory(f"{TRUN}/derive"),
    params:
        cmd=table_cmd("derive"),
        code=CODE["derive"],
    log:
        "logs/tables/{tscale}/{trun}-seed{tseed}-derive.log",
    conda:
        "../envs/rome.yaml"
    shell:
        "{params.cmd} > {log} 2>&1"


rule table_train:
    input:
        unpack(table_upstream("train")),
    output:
        directory(f"{TRUN}/train"),
    params:
        cmd=table_cmd("train"),
        code=CODE["train"],
    threads: 2
    resources:
        gpu=lambda w: tables.gpus(w.tscale, w.trun, w.tseed, "train"),
    log:
        "logs/tables/{tscale}/{trun}-seed{tseed}-train.log",
    conda:
        "../envs/rome.yaml"
    shell:
        "{params.cmd} --threads {threads} > {log} 2>&1"


rule table_evaluate:
    input:
        unpack(table_upstream("evaluate")),
    output:
        directory(f"{TRUN}/evaluate"),
    params:
        cmd=table_cmd("evaluate"),
        code=CODE["evaluate"],
    log:
        "logs/tables/{tscale}/{trun}-seed{tseed}-evaluate.log",
    conda:
        "../envs/rome.yaml"
    shell:
        "{params.cmd} > {log} 2>&1"


rule table_report:
    input:
        lambda w: tables.report_input_files(w.tscale, w.tname),
    output:
        md="reports/tables/{tscale}/{tname}.md",
        csv="reports/tables/{tscale}/{tname}.csv",
        png="reports/tables/{tscale}/{tname}.png",
    params:
        code=CODE_TABLE,
    log:
        "logs/tables/{tscale}/{tname}-report.log",
    conda:
        "../envs/rome.yaml"
    shell:
        "rome table {wildcards.tname} --scale {wildcards.tscale} --report > {log} 2>&1"
