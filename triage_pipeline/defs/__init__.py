"""The Dagster driver: resources, and the definitions of each group (`triage`, `quality`).

`triage_pipeline/definitions.py` assembles them into the one `Definitions` of the code location.
"""
