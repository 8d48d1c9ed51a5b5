"""The deterministic test engine (:mod:`engines.testing.fake`), for tests and benchmarks only."""
