"""The one type of error a person can correct: ``UserError``.

Domain services raise a subclass of it when a request cannot be carried out as asked (a missing
reason, an unknown queue, an order in the wrong status). Each carries:

- ``domain``: which part of the product refused (``dispatch``, ``account``, ``menu`` …), named
  on the class line (``class MenuError(UserError, domain="menu")``);
- ``code``: why, in a word (``invalid``, ``state``, ``role``, ``not_found`` …);
- ``params``: values a translated message may name.

``errors.<domain>.<code>`` is the key of the message shown to the user, in the user's language;
``str(error)`` stays the English detail for logs, the audit trail and API clients. The web layer
maps every ``UserError`` with one handler (``web_console/render.py``); the status follows from
the code (``forbidden`` 403, ``not_found`` 404, ``conflict`` 409, ``rate_limited`` 429,
anything else 422).
"""

from __future__ import annotations

from typing import Any, ClassVar

STATUS_BY_CODE: dict[str, int] = {"forbidden": 403, "not_found": 404, "conflict": 409, "rate_limited": 429}


class UserError(ValueError):
    """A request refused with a reason the person asking can act on."""

    domain: ClassVar[str] = "general"
    default_code: ClassVar[str] = "invalid"

    def __init_subclass__(cls, domain: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if domain is not None:
            cls.domain = domain

    def __init__(self, message: str = "", code: str | None = None, **params: Any) -> None:
        super().__init__(message)
        self.code: str = code or self.default_code
        self.params: dict[str, Any] = params

    @property
    def key(self) -> str:
        """The catalogue key of the message shown to the user."""
        return f"errors.{self.domain}.{self.code}"

    @property
    def status(self) -> int:
        """The HTTP status a web route answers with."""
        return STATUS_BY_CODE.get(self.code, 422)
