"""Group `triage`: the triage job (plan -> chunks -> finish), what launches it, and its audit-log asset."""
