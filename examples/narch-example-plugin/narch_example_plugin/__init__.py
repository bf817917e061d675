"""An example Neural Architect plugin: the ``knn`` predictor family and the ``first_improvement`` strategy.

Importing this package registers nothing; ``narch`` imports ``narch_example_plugin.knn`` and
``narch_example_plugin.hill`` through the entry points in ``pyproject.toml`` (or ``--plugin MODULE``).
"""
