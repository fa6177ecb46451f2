"""The experiment: config -> data -> model -> baselines -> fine-tuning -> evaluation -> parquet results.

Importing this package stays light (no torch): `analysis/` reads `records.schema` for the table layout.
"""
