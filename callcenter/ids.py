"""The identifiers that cross the edges, defined once: what a valid extension, queue name and
Asterisk call id look like. Every check at an edge (AMI, AGI, a console command, a form) uses these."""

from __future__ import annotations

import re

# A seat's (or supervisor's) extension: what an administrator may give an account, and so the
# only shape the rest of the system accepts (AMI channels, bus topics, console commands).
EXTENSION = re.compile(r"[0-9]{3,6}")
# A queue name: also an Asterisk section name and a queue_log field, hence lower case and no spaces.
QUEUE = re.compile(r"[a-z0-9_-]{1,32}")
# Asterisk's uniqueid and linkedid: "<epoch seconds>.<sequence>".
CALL_ID = re.compile(r"[0-9]{1,20}\.[0-9]{1,10}")
# Each seat's own queue (a returning caller is offered to their last seat first) is named so.
PERSONAL_QUEUE_PREFIX = "cc-seat-"


def is_extension(value: object) -> bool:
    return isinstance(value, str) and EXTENSION.fullmatch(value) is not None


def is_queue(value: object) -> bool:
    return isinstance(value, str) and QUEUE.fullmatch(value) is not None


def is_call_id(value: object) -> bool:
    return isinstance(value, str) and CALL_ID.fullmatch(value) is not None
