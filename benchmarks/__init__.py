"""Benchmarks that make the ROME paper's claims measurable (issue #6).

``python -m benchmarks <name>`` (``./tasks bench <name>``) runs one benchmark, writes its result
JSON under ``benchmarks/results/`` and regenerates its table in ``benchmarks/README.md``:

  * ``memory``   peak memory and seconds per search iteration, DARTS / GDAS / ROME K=1 / K=7;
  * ``nb201``    search quality on NAS-Bench-201 (table lookup), through the Snakemake pipeline;
  * ``collapse`` parameter-free ops in the derived normal cell on R-DARTS S2/S3, through the pipeline;
  * ``ddp``      search throughput (images/s) of 1 vs N processes (torchrun);
  * ``stream``   peak RSS of streamed `rome train` / `rome search`: 50,000 vs 5,000 CIFAR-10 images;
  * ``speed``    s/iteration, NCHW eager vs channels_last (compile, bf16) per algorithm and for retraining;
  * ``compile_trend`` retraining step time step by step after a cold compile, a warm-cache compile, eager.
"""

BENCHMARKS = {
    "memory": "benchmarks.memory",
    "nb201": "benchmarks.nb201",
    "collapse": "benchmarks.collapse",
    "ddp": "benchmarks.ddp",
    "stream": "benchmarks.stream",
    "speed": "benchmarks.speed",
    "compile_trend": "benchmarks.compile_trend",
}
HELP = {
    "memory": "search memory and s/iteration: DARTS, GDAS, ROME K=1/K=7 (CPU or GPU)",
    "nb201": "search quality on NAS-Bench-201 through the Snakemake pipeline",
    "collapse": "parameter-free ops in the derived normal cell on R-DARTS S2/S3",
    "ddp": "search throughput of 1 vs N processes (torchrun; CPU or GPU)",
    "stream": "peak RSS of streamed train/search on 50,000 vs 5,000 CIFAR-10 images",
    "speed": "s/iteration: NCHW eager vs channels_last (compile, bf16), search algorithms and retraining",
    "compile_trend": "retraining step time, step by step, after a cold compile, a warm-cache compile and eager",
}
