"""Device catalogue, per-layer costs, roofline times, micro-benchmarks and device telemetry."""
