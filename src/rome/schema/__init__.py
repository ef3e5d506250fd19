"""The one params schema (YAML JSON Schema), read by rome.config and by Snakemake's validate."""
