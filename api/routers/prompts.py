"""Prompt versions: list, add (never edit), activate."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from api.dependencies import provide
from api.problems import problem_responses
from api.schemas.problem import PromotionRefusedProblem
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
            few_shot_k=body.few_shot_k,
            review_threshold=body.review_threshold,
            example_bank=body.example_bank,
        )
    )
    return PromptOut.model_validate(prompt)


@router.post(
    "/{version}/activate",
    summary="Activate a prompt version",
    responses=problem_responses(
        404,
        409,
        422,
        503,
        models={409: PromotionRefusedProblem},
        descriptions={
            409: "The promotion gate refused (`promotion_refused`): `comparisons` holds the figures; `force=true`"
            " overrides."
        },
    ),
)
def activate_prompt(
    version: Annotated[int, Path(ge=1, le=2**31 - 1, description="Version number.")],
    use_case: Annotated[ActivatePrompt, provide(ActivatePrompt)],
    force: Annotated[
        bool,
        Query(description="Activate even when the promotion gate refuses; the override is recorded with the figures."),
    ] = False,
) -> PromptOut:
    """Make this version the only active one; the switch is atomic and audited.

    The promotion gate: when this version's latest evaluation on a labelled file is worse (category or
    priority accuracy) than the active version's latest on the same file, 409 `promotion_refused` with the
    `comparisons`, unless `force=true`.
    """
    command = ActivatePromptCommand(version=version, actor="api", force=force)
    return PromptOut.model_validate(use_case.execute(command))
