"""The paper's tables as pipeline targets: definitions (``tables/*.yaml``), the runs a row needs at a
scale, the generated DVC stage set, the Snakemake rules' lookups, and the report."""
