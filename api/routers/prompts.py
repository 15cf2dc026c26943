"""Prompt versions: list, add (never edit), activate."""

from typing import Annotated

from fastapi import APIRouter, Path, status

from api.dependencies import provide
from api.problems import problem_responses
from api.schemas.prompt import PromptIn, PromptOut
from triage_pipeline.application.prompts import (
    ActivatePrompt,
    ActivatePromptCommand,
    AddPromptCommand,
    AddPromptVersion,
    ListPrompts,
    ListPromptsQuery,
)
from triage_pipeline.domain.prompt import DEFAULT_PROMPT_NAME

router = APIRouter(prefix="/prompts", tags=["prompts"])


@router.get("", summary="List the versions of the triage prompt", responses=problem_responses(503))
def list_prompts(use_case: Annotated[ListPrompts, provide(ListPrompts)]) -> list[PromptOut]:
    """Every version, oldest first."""
    return [PromptOut.model_validate(p) for p in use_case.execute(ListPromptsQuery(DEFAULT_PROMPT_NAME))]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Add a prompt version",
    responses=problem_responses(400, 409, 413, 422, 503),
)
def add_prompt(body: PromptIn, use_case: Annotated[AddPromptVersion, provide(AddPromptVersion)]) -> PromptOut:
    """A new immutable version, activated at once when `activate` is true."""
    prompt = use_case.execute(
        AddPromptCommand(
            system_text=body.system_text,
            user_template=body.user_template,
            categories=body.categories,
            model_options=body.model_options,
            description=body.description,
            activate=body.activate,
            actor="api",
        )
    )
    return PromptOut.model_validate(prompt)


@router.post(
    "/{version}/activate",
    summary="Activate a prompt version",
    responses=problem_responses(404, 422, 503),
)
def activate_prompt(
    version: Annotated[int, Path(ge=1, le=2**31 - 1, description="Version number.")],
    use_case: Annotated[ActivatePrompt, provide(ActivatePrompt)],
) -> PromptOut:
    """Make this version the only active one; the switch is atomic and audited."""
    return PromptOut.model_validate(use_case.execute(ActivatePromptCommand(version=version, actor="api")))
