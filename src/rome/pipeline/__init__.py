"""What the pipeline engines (DVC, Snakemake) must see of each stage: its params, code, inputs and outputs.

``spec`` is the stage table both engines are built from; ``codedeps`` derives each stage's code from
its imports; ``dvcfile`` writes dvc.yaml from them; ``fingerprint`` gives Snakemake the same facts
as content hashes. No stage logic lives here.
"""
