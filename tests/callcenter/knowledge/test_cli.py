"""``callcenter kb grant`` gives a seat's account an editor's or reviewer's role (audited);
``callcenter kb reindex`` cuts the index anew."""

from __future__ import annotations

from datetime import date

import pytest

from callcenter.audit.service import search as audit_search
from callcenter.database import session_scope
from callcenter.knowledge import search, service
from hotline.cli import main


def test_grant_and_reindex(settings, capsys):
    assert main(["kb", "grant", "seat1001", "editor"]) == 0
    with session_scope(settings) as s:
        assert service.roles_of(s, service.Person("seat1001", "seat")) == {"editor"}
        assert audit_search(s, action="kb.grant")[0].target == "account:seat1001"
        a = service.create(
            s, service.Person("seat1001", "seat"), {"title": "高龄补贴", "spoken": "到社区申请。"}
        )
        service.review(s, service.Person("chief", "supervisor"), a.id)
        service.publish(s, service.Person("chief", "supervisor"), a.id, date(2026, 12, 5))
        s.commit()
    assert main(["kb", "reindex"]) == 0
    assert "1 published articles indexed" in capsys.readouterr().out
    with session_scope(settings) as s:
        assert [h.article_id for h in search.search(s, "高龄补贴")] == [a.id]
    with pytest.raises(SystemExit):
        main(["kb", "grant", "seat1001", "owner"])
