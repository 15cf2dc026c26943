"""The REST intake API: a thin HTTP driver over the application's use cases."""
