"""Adapters of webhook delivery: signing and posting, sealing secrets, checking target URLs."""
