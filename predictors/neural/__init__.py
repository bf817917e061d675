"""Neural predictor families (issue 4): the paper's LSTM performance simulation network, a GIN over the layer DAG,
and a deep ensemble. Importing this package registers them."""

from narch.predictors.neural import ensemble, gin, simulation

__all__ = ["ensemble", "gin", "simulation"]
