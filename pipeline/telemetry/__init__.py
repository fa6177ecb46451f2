"""Telemetry: what the machine does while a run works (the resource sampler), what it is (environment), what the
run actually used where its config left it open (effective), and how progress is shown. The bottom layer of
pipeline/: it imports nothing of the packages above it.
"""
