"""Search algorithms as registry entries (``search.algorithm``); one module per algorithm.

To add an algorithm: write ``rome/algorithms/<name>.py`` with one ``register_algorithm(...)`` call,
import it below, and add its name to the ``algorithm`` enum of ``rome/schema/params.schema.yaml``
(tests/test_registries.py checks the enum against this registry). The import order is the order of
``algorithm_names()``.
"""

# each module registers itself; this order (the paper's) is the order of algorithm_names() and of the schema enum
from rome.algorithms import rome  # noqa: F401  isort: skip
from rome.algorithms import gdas  # noqa: F401  isort: skip
from rome.algorithms import darts  # noqa: F401  isort: skip
from rome.algorithms import pc_darts  # noqa: F401  isort: skip
from rome.algorithms import random_search  # noqa: F401  isort: skip
from rome.algorithms.registry import (
    ALGORITHMS,
    AlgorithmSpec,
    ReferenceBehaviour,
    algorithm_names,
    find_algorithm,
    get_algorithm,
    register_algorithm,
)

__all__ = ["ALGORITHMS", "AlgorithmSpec", "ReferenceBehaviour", "algorithm_names", "find_algorithm", "get_algorithm", "register_algorithm"]
