"""The `narch` command line."""
