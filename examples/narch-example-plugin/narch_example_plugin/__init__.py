"""An example Neural Architect plugin: the ``knn`` predictor family and the ``annealing`` strategy.

Importing this package registers nothing; ``narch`` imports ``narch_example_plugin.knn`` and
``narch_example_plugin.anneal`` through the entry points in ``pyproject.toml`` (or ``--plugin MODULE``).
"""
