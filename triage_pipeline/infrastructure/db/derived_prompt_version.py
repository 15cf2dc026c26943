"""A migration's new version of the default `triage` prompt, derived from an earlier version (migrations 0012,
0014, 0016): the earlier version's text, examples, schema and few-shot `k`, with the options and review threshold
the migration gives. Versions are never edited, so a change of either is a new version.

The new version becomes active only where the version it derives from still is: an admin who activated
another keeps it. The activation is recorded in `prompt_activations` as made by the migration, so that the
downgrade restores the version it replaced. A downgrade keeps a version that attempts or evaluations used
(their foreign keys need it) and only switches it off.

Migrations call these with Alembic's `op`; keep their behaviour as it is, since applied migrations run them.
"""

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from alembic import op


def add_derived_version(
    *,
    prompt_id: str,
    source_id: str,
    revision: str,
    description: str,
    review_threshold: float,
    model_options: Mapping[str, Any] | None = None,
) -> None:
    """Insert version `max + 1` as `prompt_id`, derived from `source_id`; nothing without that source (a
    database whose prompts were replaced by hand). `model_options` None keeps the source's."""
    bind = op.get_bind()
    version = bind.execute(sa.text("SELECT coalesce(max(version), 0) + 1 FROM prompts WHERE name = 'triage'"))
    next_version = int(version.scalar_one())
    source_active = bind.execute(
        sa.text("SELECT is_active FROM prompts WHERE id = CAST(:id AS uuid)").bindparams(id=source_id)
    ).scalar_one_or_none()
    if source_active is None:
        return
    if source_active:
        op.execute(sa.text("UPDATE prompts SET is_active = false WHERE name = 'triage' AND is_active"))
    op.execute(
        sa.text(
            "INSERT INTO prompts (id, name, version, description, system_text, user_template, output_schema,"
            " model_options, is_active, activated_at, few_shot_k, review_threshold, created_at, updated_at)"
            " SELECT CAST(:id AS uuid), name, :version, :description, system_text, user_template, output_schema,"
            " coalesce(CAST(:options AS jsonb), model_options), :active, CASE WHEN :active THEN now() END,"
            " few_shot_k, :threshold, now(), now()"
            " FROM prompts WHERE id = CAST(:source AS uuid)"
        ).bindparams(
            id=prompt_id,
            source=source_id,
            version=next_version,
            description=description,
            options=None if model_options is None else json.dumps(dict(model_options)),
            active=bool(source_active),
            threshold=review_threshold,
        )
    )
    if source_active:
        op.execute(
            sa.text(
                "INSERT INTO prompt_activations (id, prompt_id, name, version, previous_version, activated_by)"
                " SELECT gen_random_uuid(), CAST(:id AS uuid), 'triage', :version, version, :by"
                " FROM prompts WHERE id = CAST(:source AS uuid)"
            ).bindparams(id=prompt_id, version=next_version, source=source_id, by=f"migration {revision}")
        )


def remove_derived_version(*, prompt_id: str, revision: str, fallback_version: int) -> None:
    """Undo `add_derived_version`: delete the version (or switch it off if used) and, if it was active,
    activate the version it replaced (`fallback_version` when the migration did not activate it)."""
    bind = op.get_bind()
    was_active = bind.execute(
        sa.text("SELECT is_active FROM prompts WHERE id = CAST(:id AS uuid)").bindparams(id=prompt_id)
    ).scalar_one_or_none()
    if was_active is None:
        return
    previous = bind.execute(
        sa.text(
            "SELECT previous_version FROM prompt_activations WHERE prompt_id = CAST(:id AS uuid) AND activated_by = :by"
        ).bindparams(id=prompt_id, by=f"migration {revision}")
    ).scalar_one_or_none()
    used = bind.execute(
        sa.text(
            "SELECT EXISTS (SELECT 1 FROM triage_job_logs WHERE prompt_id = CAST(:id AS uuid))"
            " OR EXISTS (SELECT 1 FROM evaluation_runs WHERE prompt_id = CAST(:id AS uuid))"
        ).bindparams(id=prompt_id)
    ).scalar_one()
    if used:
        op.execute(
            sa.text("UPDATE prompts SET is_active = false WHERE id = CAST(:id AS uuid)").bindparams(id=prompt_id)
        )
    else:
        op.execute(
            sa.text("DELETE FROM prompt_activations WHERE prompt_id = CAST(:id AS uuid)").bindparams(id=prompt_id)
        )
        op.execute(sa.text("DELETE FROM prompts WHERE id = CAST(:id AS uuid)").bindparams(id=prompt_id))
    if was_active:
        restored = previous if previous is not None else fallback_version
        op.execute(
            sa.text(
                "UPDATE prompts SET is_active = true, activated_at = now() WHERE name = 'triage' AND version = :v"
            ).bindparams(v=restored)
        )
