"""An article's lifecycle with its roles: editors write drafts, a reviewer other than the last
editor reviews and publishes, expiry by date or by a reviewer; every step a version and an
audit line; bad input refused with a clear error."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from callcenter.audit.service import search as audit_search
from callcenter.database import session_scope
from callcenter.knowledge import search, service
from callcenter.knowledge.models import ArticleStatus, Feedback, KbRole
from callcenter.knowledge.service import KnowledgeError, Person

TODAY = date(2026, 12, 5)
EDITOR = Person("zhang", "seat", "10.0.0.1")
REVIEWER = Person("li", "seat", "10.0.0.2")
SEAT = Person("wang", "seat")
CHIEF = Person("chief", "supervisor")

DATA = {
    "title": "高龄补贴申领",
    "questions": "八十岁老人有补贴吗\n高龄补贴怎么领",
    "spoken": "年满80周岁的本市户籍老人到社区申请。",
    "answer": "带身份证、户口簿和银行卡到社区申请，按月发放。",
    "keywords": "高龄补贴,高龄津贴",
    "owner_office": "安宁区民政局",
    "valid_until": "2027-06-30",
}


@pytest.fixture
def kb(settings):
    with session_scope(settings) as s:
        service.grant(s, EDITOR.username, KbRole.EDITOR.value)
        service.grant(s, REVIEWER.username, KbRole.REVIEWER.value)
        service.grant(s, REVIEWER.username, KbRole.REVIEWER.value)  # twice: kept once
        s.commit()
    return settings


def test_draft_review_publish_expire_with_versions_and_audit(kb):
    with session_scope(kb) as s:
        a = service.create(s, EDITOR, DATA)
        assert a.status == ArticleStatus.DRAFT and a.owner == "zhang" and a.attachments == []
        assert search.search(s, "高龄补贴") == []  # a draft is not found
        with pytest.raises(KnowledgeError) as e:
            service.publish(s, REVIEWER, a.id, TODAY)  # not reviewed yet
        assert e.value.code == "state"
        service.review(s, REVIEWER, a.id, "checked against the 2026 notice")
        service.publish(s, REVIEWER, a.id, TODAY)
        s.commit()
        assert [h.article_id for h in search.search(s, "高龄补贴")] == [a.id]

        # An edit is a new version, back to draft and out of search until reviewed again.
        service.edit(s, EDITOR, a.id, {"spoken": "年满80周岁的老人到社区或街道申请。"})
        assert a.version == 2 and a.status == ArticleStatus.DRAFT and a.reviewed_by == ""
        assert search.search(s, "高龄补贴") == []
        service.review(s, REVIEWER, a.id)
        service.publish(s, REVIEWER, a.id, TODAY)
        service.expire(s, REVIEWER, a.id, "policy replaced")
        s.commit()
        assert search.search(s, "高龄补贴") == []

        steps = [(v.version, v.action, v.status, v.actor) for v in service.versions(s, a.id)]
        assert steps == [
            (1, "create", "draft", "zhang"),
            (1, "review", "reviewed", "li"),
            (1, "publish", "published", "li"),
            (2, "edit", "draft", "zhang"),
            (2, "review", "reviewed", "li"),
            (2, "publish", "published", "li"),
            (2, "expire", "expired", "li"),
        ]
        assert service.versions(s, a.id)[0].content["spoken"] == DATA["spoken"]  # the old text kept
        actions = [e.action for e in audit_search(s, target=f"kb:{a.id}")]
        assert sorted(set(actions)) == ["kb.create", "kb.edit", "kb.expire", "kb.publish", "kb.review"]
        assert audit_search(s, action="kb.create")[0].ip == "10.0.0.1"


def test_roles_are_checked(kb):
    with session_scope(kb) as s:
        with pytest.raises(KnowledgeError) as e:
            service.create(s, SEAT, DATA)  # a seat without the editor role
        assert e.value.code == "forbidden" and e.value.key == "errors.knowledge.forbidden"
        with pytest.raises(KnowledgeError):
            service.create(s, REVIEWER, DATA)  # reviewers do not write
        a = service.create(s, EDITOR, DATA)
        with pytest.raises(KnowledgeError):
            service.review(s, EDITOR, a.id)  # editors do not review
        with pytest.raises(KnowledgeError):
            service.review(s, SEAT, a.id)
        # Four eyes: a supervisor may edit and review, but not review their own edit.
        service.edit(s, CHIEF, a.id, {"title": "高龄补贴（80周岁以上）申领"})
        with pytest.raises(KnowledgeError) as e:
            service.review(s, CHIEF, a.id)
        assert e.value.code == "forbidden"
        with pytest.raises(KnowledgeError):
            service.send_back(s, REVIEWER, a.id, "  ")  # a reason is required
        service.send_back(s, REVIEWER, a.id, "add the 2027 amount")
        assert a.status == ArticleStatus.DRAFT
        with pytest.raises(KnowledgeError):
            service.grant(s, "x", "owner")


def test_bad_input_is_refused_clearly(kb):
    with session_scope(kb) as s:
        for bad in (
            {**DATA, "title": "  "},
            {**DATA, "spoken": "", "answer": ""},
            {**DATA, "title": "长" * 201},
            {**DATA, "valid_until": "明年"},
            {**DATA, "valid_from": "2027-01-01", "valid_until": "2026-01-01"},
        ):
            with pytest.raises(KnowledgeError) as e:
                service.create(s, EDITOR, bad)
            assert e.value.code == "invalid"
        a = service.create(s, EDITOR, {**DATA, "title": "高龄\u202e补贴\x00", "questions": "a\r\n\r\n b \n"})
        assert a.title == "高龄补贴" and a.questions == "a\nb"
        with pytest.raises(KnowledgeError) as e:
            service.get(s, 999)
        assert e.value.status == 404


def test_expiry_sweep_and_the_owners_list(kb):
    with session_scope(kb) as s:
        ids = []
        for until in ("2026-12-10", "2026-12-31", "2027-03-01"):
            a = service.create(s, EDITOR, {**DATA, "valid_until": until})
            service.review(s, REVIEWER, a.id)
            service.publish(s, REVIEWER, a.id, TODAY)
            ids.append(a.id)
        with pytest.raises(KnowledgeError):
            late = service.create(s, EDITOR, {**DATA, "valid_until": "2026-12-01"})
            service.review(s, REVIEWER, late.id)
            service.publish(s, REVIEWER, late.id, TODAY)  # already past its date
        s.commit()
        soon = service.expiring(s, TODAY, 30, owner="zhang")
        assert [a.id for a in soon] == ids[:2]
        assert service.expire_due(s, date(2027, 1, 1)) == ids[:2]
        s.commit()
        assert [h.article_id for h in search.search(s, "高龄补贴")] == [ids[2]]
        assert service.versions(s, ids[0])[-1].actor == "system"


def test_feedback_reaches_the_owner_and_uses_are_counted(kb):
    with session_scope(kb) as s:
        a = service.create(s, EDITOR, DATA)
        with pytest.raises(KnowledgeError):
            service.record_use(s, a.id, None, "1001")  # a draft answers no call
        service.review(s, REVIEWER, a.id)
        service.publish(s, REVIEWER, a.id, TODAY)
        service.record_use(s, a.id, None, "1001")
        fb = service.feedback(s, SEAT, a.id, "wrong", "金额已调整", "高龄补贴多少钱")
        missing = service.feedback(s, SEAT, None, "missing", "没有关于桃农补贴的文章", "桃农补贴")
        with pytest.raises(KnowledgeError):
            service.feedback(s, SEAT, None, "wrong", "")
        with pytest.raises(KnowledgeError):
            service.feedback(s, SEAT, a.id, "spam", "")
        s.commit()
        assert a.uses == 1 and fb.owner == "zhang" and missing.owner == ""
        assert s.get(Feedback, fb.id).text == "金额已调整"


async def test_the_engines_sweep_expires_by_chinas_date(kb, tmp_path):
    from callcenter.config import Settings, set_settings
    from callcenter.knowledge.workers import ExpirySweep, sweep

    with session_scope(kb) as s:
        a = service.create(s, EDITOR, {**DATA, "valid_until": "2026-12-31"})
        service.review(s, REVIEWER, a.id)
        service.publish(s, REVIEWER, a.id, TODAY)
        s.commit()
    # 2026-12-31 16:30 UTC is already 2027-01-01 in China.
    late = set_settings(kb.model_copy(update={"clock": "2027-01-01T00:30:00+08:00"}))
    assert isinstance(late, Settings)
    assert sweep(kb.model_copy(update={"clock": "2026-12-31T23:59:00+08:00"})) == []
    task = ExpirySweep(late, interval=3600)
    await task.start()
    try:
        for _ in range(200):
            with session_scope(late) as s:
                if s.get(service.Article, a.id).status == ArticleStatus.EXPIRED:
                    break
            await asyncio.sleep(0.05)
    finally:
        await task.stop()
    with session_scope(late) as s:
        assert s.get(service.Article, a.id).status == ArticleStatus.EXPIRED
        assert search.search(s, "高龄补贴") == []
