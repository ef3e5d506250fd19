"""One module per pipeline stage.

Each module exposes ``SECTIONS`` (the params sections it reads: its provenance and its DVC
``params``), optionally ``add_arguments(parser)``, and ``run(params, out, args) -> Path`` which
writes one artifact folder atomically and returns it.
"""
