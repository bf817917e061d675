"""Tasks, the torch builder of a spec, the training and measurement loop, and the Parquet corpus."""
