"""Neural predictor families (issue 4): the paper's LSTM performance simulation network, a GIN over the layer DAG,
a GIN over a cell benchmark's own graph (issue 12) and a deep ensemble. Importing this package registers them."""

from narch.predictors.neural import cell_gin, ensemble, gin, simulation

__all__ = ["cell_gin", "ensemble", "gin", "simulation"]
