"""Prompt versions: list, add (never edit), activate."""

from typing import Annotated

from fastapi import APIRouter, Path, status

from api.dependencies import ContainerDep
from api.problems import problem_responses
from api.schemas.prompt import PromptIn, PromptOut
from triage_pipeline.application.prompts import ActivatePromptCommand, AddPromptCommand, ListPromptsQuery
from triage_pipeline.domain.prompt import DEFAULT_PROMPT_NAME

router = APIRouter(prefix="/prompts", tags=["prompts"])


@router.get("", summary="List the versions of the triage prompt", responses=problem_responses(503))
def list_prompts(container: ContainerDep) -> list[PromptOut]:
    """Every version, oldest first."""
    return [PromptOut.from_domain(p) for p in container.list_prompts.execute(ListPromptsQuery(DEFAULT_PROMPT_NAME))]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Add a prompt version",
    responses=problem_responses(400, 409, 413, 422, 503),
)
def add_prompt(body: PromptIn, container: ContainerDep) -> PromptOut:
    """A new immutable version, activated at once when `activate` is true."""
    prompt = container.add_prompt.execute(
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
    return PromptOut.from_domain(prompt)


@router.post(
    "/{version}/activate",
    summary="Activate a prompt version",
    responses=problem_responses(404, 422, 503),
)
def activate_prompt(
    version: Annotated[int, Path(ge=1, le=2**31 - 1, description="Version number.")], container: ContainerDep
) -> PromptOut:
    """Make this version the only active one; the switch is atomic and audited."""
    return PromptOut.from_domain(container.activate_prompt.execute(ActivatePromptCommand(version=version, actor="api")))
