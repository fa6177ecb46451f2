"""Read-only analysis of cached results (results/<run>/) for report.qmd. Never imports torch.

Facts (numbers; no prose):
    runs        find, select and read runs: manifest.json (records.manifest) and the parquet tables
    integrity   each table checked against the manifest's checksum record (a damaged table stops the render)
    validate    the values of each table and the manifest facts the report computes with, row by row
    errors      ReportError: bad input, one line naming the file and the fix (the renderer exits 2)
    progress    each stage's state, the stages left out on purpose, what is missing (one wording each)
    facts       RunFacts / ReportFacts: every number of a run, computed once; report_facts() loads them
    stats       accuracy, Wilson intervals, McNemar's exact test, confusion matrices, per-class scores
    binomial    the fair binomial tail of McNemar's test, in floating point, linear in n (no scipy)
    cases       corrected / regressed / unresolved cases and their surface cues
    training    fine-tuning time, tokens per second, padding, the validation trend (over-fitting)
    resources   peaks per stage and per run, the memory cap check, GPU utilisation during training
    tuning      the tuning trials and the chosen settings against the final run's config
    settings    config values labelled by their fields' help text (records/config.py)
    original    the original study's reference figures (original_study.yaml)
Words and markdown:
    fmt         numbers in words (thousands separators, percentages, GiB, "not measured")
    wording     phrases that depend on a result (significance, cap verdict, plural)
    markdown    the one entrance for untrusted text (text, code, fenced; plain for figures), Markdown, show_if
    tables      markdown pipe tables (every cell escaped unless it is Markdown)
    blocks      jinja2 blocks repeated per run (templates/report/*.md.j2)
    figures     matplotlib figures as PNG cell outputs
    sections/   the tables and lists of each report section, one module per section
    render/     `python -m analysis.render`: Quarto when present, else the fallback (nbclient + pandoc + typst)
"""
