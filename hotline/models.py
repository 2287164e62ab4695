"""Every table of the product, registered on ``SQLModel.metadata`` (Alembic and tests need all of them)."""

from __future__ import annotations

import callcenter.accounts.models
import callcenter.audit.models
import callcenter.callcontrol.models
import callcenter.calls.models
import callcenter.directory.models
import callcenter.ivr.models
import callcenter.knowledge.models
import callcenter.records.models
import callcenter.residents.models
import callcenter.statistics.models
import dispatch.models
import sms.models

MODEL_MODULES = (
    callcenter.accounts.models,
    callcenter.audit.models,
    callcenter.callcontrol.models,
    callcenter.calls.models,
    callcenter.directory.models,
    callcenter.ivr.models,
    callcenter.knowledge.models,
    callcenter.records.models,
    callcenter.residents.models,
    callcenter.statistics.models,
    dispatch.models,
    sms.models,
)


def import_all_models() -> None:
    """The imports above did the work; callers name this to say why they import the module."""
