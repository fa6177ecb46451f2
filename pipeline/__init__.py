"""The experiment: config -> data -> model -> baselines -> fine-tuning -> evaluation -> parquet results.

Importing this package stays light (no torch): `analysis/` reads `pipeline.schema` for the table layout.
"""
