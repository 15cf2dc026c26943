"""Pydantic DTOs of the API, one concept per module."""
