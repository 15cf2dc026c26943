"""Use cases: each a class with one public `execute(command)`, driven by the API and by Dagster."""
