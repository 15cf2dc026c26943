"""One validation error, naming the field it is about."""

from pydantic import BaseModel, Field


class FieldError(BaseModel):
    """What is wrong with one field of a request."""

    field: str = Field(description="Dotted path of the field inside the body or item, or a parameter name.")
    message: str = Field(description="Human-readable explanation.")
    type: str = Field(description="Machine-readable error type, e.g. `string_too_long`, `nul_character`.")
