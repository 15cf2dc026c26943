"""The `triage` command line: a third thin driver of the same use cases (and the service supervisor)."""
