"""The hostile-input corpus through the web edges of the app running in its own process: the SMS
webhooks (signed as the providers sign), Open311 and the JSON API never answer with a 5xx."""

from __future__ import annotations

from sqlmodel import select

from callcenter.database import session_scope
from dispatch.models import Category
from tests.hostile import feed_web


def test_the_corpus_through_the_web_edges(served):
    with session_scope(served.settings) as s:
        if s.exec(select(Category).where(Category.code == "001")).first() is None:
            s.add(Category(code="001", name="路面塌陷"))
            s.commit()
    outcome = feed_web(served.web_target())
    assert outcome.inputs > 500
    assert not outcome.failures, "\n".join(outcome.failures[:20])
    # The app is still up and answering.
    assert served.client().get("/healthz").status_code == 200
