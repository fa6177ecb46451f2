"""The torch-free contract of results/<run>/: what a run's folder holds and how it is written, read and checked.

The config and its fields, the stage graph and fingerprints, the table schema, the manifest, the store (the only
writer of results/), the lock, the integrity checks, the history of test evaluations, tuned choices, hashing,
the code version and `verify`. The pipeline (pipeline/) and the report (analysis/) both import this package; it
imports neither, nor any model library (docs/ARCHITECTURE.md, checked by tests/architecture/).
"""
