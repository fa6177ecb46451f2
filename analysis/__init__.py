"""Read-only analysis of cached results (results/<run>/) for the report. Never imports torch.

Modules, one job each:
    load       find, select and read runs (manifest.json + parquet tables)
    fmt        number formatting (thousands separators, percentages, bytes)
    stats      accuracy, Wilson intervals, McNemar's exact test, confusion matrices, per-class scores
    cases      corrected / regressed / unresolved cases and the cue breakdown
    resources  per-stage peaks and timelines of the resource sampler
    tables     markdown (pipe) tables that render in HTML and typst alike
    figures    matplotlib figures written as PNG files
    text       jinja2 narrative blocks under templates/report/
    sections   one function per report section, called from report.qmd
    render     `python -m analysis.render`: Quarto when present, else nbclient + pandoc + typst
"""
