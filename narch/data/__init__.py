"""Package data, no code: the public per-architecture files under ``external/`` (their README names each file's
source and licence). Read them through ``narch.dataset_builder.importers.sources.external_dir``."""
