"""UI strings: Simplified Chinese first, English by a switch.

Templates call ``t("key")``; ``{name}`` placeholders are filled with ``t("key", name=...)``.
Keys starting with ``js.`` are also handed to the page's script (see ``js_catalogue``).
Both catalogues must hold the same keys (a test checks it).
"""

from __future__ import annotations

from collections.abc import Callable

DEFAULT_LANG = "zh"
LANGS = ("zh", "en")
# The BCP 47 tag for <html lang> and for the browser's date/time formatting.
LOCALE_TAGS = {"zh": "zh-CN", "en": "en-GB"}

ZH: dict[str, str] = {
    "app.title": "安宁区社区服务热线",
    "app.console_title": "座席工作台",
    "lang.switch": "English",
    "lang.switch_code": "en",
    # login
    "login.title": "登录",
    "login.heading": "座席登录",
    "login.username": "用户名",
    "login.password": "密码",
    "login.submit": "登录",
    "login.failed": "用户名或密码错误，或账号已停用。",
    "login.throttled": "登录失败次数过多，请 {minutes} 分钟后再试。",
    "login.csrf": "页面已过期，请重新输入后登录。",
    "login.missing": "请输入用户名和密码。",
    "login.logged_out": "您已退出登录。",
    # console
    "console.seat": "座席",
    "console.extension": "分机",
    "console.no_extension": "此账号未绑定分机，不会收到来电弹屏。",
    "console.logout": "退出",
    "admin.accounts": "账户管理",
    "admin.audit": "审计日志",
    "admin.username": "用户名",
    "admin.display_name": "姓名",
    "admin.role": "角色",
    "admin.active": "启用",
    "admin.yes": "是",
    "admin.no": "否",
    "admin.enable": "启用",
    "admin.disable": "停用",
    "admin.reset_password": "重置密码",
    "admin.new_account": "新建账户",
    "admin.create": "创建",
    "admin.temporary_password": "{user} 的临时密码（只显示这一次，首次登录须修改）：",
    "admin.actor": "操作人",
    "admin.action": "操作",
    "admin.target": "对象",
    "admin.when": "时间",
    "admin.from": "来源地址",
    "admin.detail": "详情",
    "admin.search": "查询",
    "console.state": "状态",
    "console.pause": "暂停接听",
    "console.resume": "恢复接听",
    "console.pause_reason": "暂停原因",
    "js.seatstate.available": "空闲",
    "js.seatstate.ringing": "振铃",
    "js.seatstate.talking": "通话中",
    "js.seatstate.paused": "暂停",
    "js.seatstate.unavailable": "未在线",
    "js.pause_failed": "操作未成功，请重试。",
    "wallboard.title": "实时监控",
    "wallboard.queues": "队列",
    "wallboard.queue": "队列",
    "wallboard.waiting": "等待来电",
    "wallboard.longest_wait": "最长等待（秒）",
    "wallboard.seats": "座席",
    "wallboard.ext": "分机",
    "wallboard.name": "姓名",
    "wallboard.state": "状态",
    "wallboard.reason": "暂停原因",
    "wallboard.since": "持续",
    "console.idle": "等待来电……",
    "console.role.admin": "管理员",
    "console.role.supervisor": "班长",
    "console.role.seat": "座席",
    "console.role.outlet": "服务网点",
    "pop.caller": "来电号码",
    "pop.caller_name": "来电显示名",
    "pop.did": "被叫号码",
    "pop.queue": "队列",
    "pop.ringing_at": "振铃时间",
    "pop.answered_at": "接听时间",
    "pop.resident": "居民",
    "pop.age": "年龄",
    "pop.address": "地址",
    "pop.unknown": "未登记来电：该号码没有居民档案。",
    "pop.history": "历史记录",
    "pop.calls": "来电次数",
    "pop.last_call": "上次来电",
    "pop.orders": "工单数",
    "pop.last_order": "最近工单",
    "pop.order_12345": "12345 工单号",
    "pop.summary_12345": "12345 诉求摘要",
    "pop.badge_elderly": "老年人",
    "pop.badge_alone": "独居",
    # messages for the page's script
    "js.state.ringing": "来电振铃",
    "js.state.talking": "通话中",
    "js.source.carrier": "热线来电",
    "js.source.12345": "12345 转接",
    "js.conn.connecting": "正在连接……",
    "js.conn.online": "已连接",
    "js.conn.offline": "连接中断，正在重连……",
    "js.conn.forbidden": "此账号无权使用座席弹屏。",
    "js.conn.no_extension": "此账号未绑定分机。",
    "js.age": "{age} 岁",
    "js.calls": "{n} 次",
    "js.orders": "{n} 件",
    "js.none": "无",
    "js.seat": "座席 {seat}",
    "js.outcome.answered": "已接听",
    "js.outcome.abandoned": "放弃",
    "js.outcome.missed": "未接",
    "js.outcome.voicemail": "留言",
    "js.outcome.transferred": "已转接",
    "js.outcome.callback": "回拨",
    # errors
    "error.forbidden_title": "无权访问",
    "error.forbidden": "您的账号没有访问此页面的权限。",
    "error.back_login": "返回登录",
}

EN: dict[str, str] = {
    "app.title": "Anning District Community Service Hotline",
    "app.console_title": "Seat console",
    "lang.switch": "中文",
    "lang.switch_code": "zh",
    "login.title": "Log in",
    "login.heading": "Seat login",
    "login.username": "Username",
    "login.password": "Password",
    "login.submit": "Log in",
    "login.failed": "Wrong username or password, or the account is disabled.",
    "login.throttled": "Too many failed logins. Please try again in {minutes} min.",
    "login.csrf": "The page had expired. Please enter your details again.",
    "login.missing": "Please enter your username and password.",
    "login.logged_out": "You have logged out.",
    "console.seat": "Seat",
    "console.extension": "Extension",
    "console.no_extension": "This account has no extension, so no call pops will appear.",
    "console.logout": "Log out",
    "admin.accounts": "Accounts",
    "admin.audit": "Audit log",
    "admin.username": "Username",
    "admin.display_name": "Name",
    "admin.role": "Role",
    "admin.active": "Active",
    "admin.yes": "yes",
    "admin.no": "no",
    "admin.enable": "Enable",
    "admin.disable": "Disable",
    "admin.reset_password": "Reset password",
    "admin.new_account": "New account",
    "admin.create": "Create",
    "admin.temporary_password": "Temporary password for {user} (shown once; to be changed at first login):",
    "admin.actor": "Who",
    "admin.action": "Action",
    "admin.target": "Target",
    "admin.when": "When",
    "admin.from": "From",
    "admin.detail": "Detail",
    "admin.search": "Search",
    "console.state": "State",
    "console.pause": "Pause",
    "console.resume": "Resume",
    "console.pause_reason": "Pause reason",
    "js.seatstate.available": "Available",
    "js.seatstate.ringing": "Ringing",
    "js.seatstate.talking": "On a call",
    "js.seatstate.paused": "Paused",
    "js.seatstate.unavailable": "Offline",
    "js.pause_failed": "That did not work; please try again.",
    "wallboard.title": "Live wallboard",
    "wallboard.queues": "Queues",
    "wallboard.queue": "Queue",
    "wallboard.waiting": "Waiting",
    "wallboard.longest_wait": "Longest wait (s)",
    "wallboard.seats": "Seats",
    "wallboard.ext": "Ext.",
    "wallboard.name": "Name",
    "wallboard.state": "State",
    "wallboard.reason": "Pause reason",
    "wallboard.since": "For",
    "console.idle": "Waiting for calls…",
    "console.role.admin": "Administrator",
    "console.role.supervisor": "Supervisor",
    "console.role.seat": "Seat",
    "console.role.outlet": "Service outlet",
    "pop.caller": "Caller",
    "pop.caller_name": "Caller ID name",
    "pop.did": "Number called",
    "pop.queue": "Queue",
    "pop.ringing_at": "Ringing since",
    "pop.answered_at": "Answered at",
    "pop.resident": "Resident",
    "pop.age": "Age",
    "pop.address": "Address",
    "pop.unknown": "Unregistered caller: no resident record for this number.",
    "pop.history": "History",
    "pop.calls": "Calls",
    "pop.last_call": "Last call",
    "pop.orders": "Work orders",
    "pop.last_order": "Latest order",
    "pop.order_12345": "12345 order no.",
    "pop.summary_12345": "12345 summary",
    "pop.badge_elderly": "Elderly",
    "pop.badge_alone": "Lives alone",
    "js.state.ringing": "Incoming call",
    "js.state.talking": "On call",
    "js.source.carrier": "Hotline call",
    "js.source.12345": "Transferred from 12345",
    "js.conn.connecting": "Connecting…",
    "js.conn.online": "Connected",
    "js.conn.offline": "Disconnected, reconnecting…",
    "js.conn.forbidden": "This account may not use the seat console.",
    "js.conn.no_extension": "This account has no extension.",
    "js.age": "{age} yrs",
    "js.calls": "{n}",
    "js.orders": "{n}",
    "js.none": "none",
    "js.seat": "seat {seat}",
    "js.outcome.answered": "answered",
    "js.outcome.abandoned": "abandoned",
    "js.outcome.missed": "missed",
    "js.outcome.voicemail": "voicemail",
    "js.outcome.transferred": "transferred",
    "js.outcome.callback": "called back",
    "error.forbidden_title": "Forbidden",
    "error.forbidden": "Your account may not open this page.",
    "error.back_login": "Back to login",
}

CATALOGUES: dict[str, dict[str, str]] = {"zh": ZH, "en": EN}


def normalize_lang(value: str | None) -> str | None:
    """``zh``/``en`` for a recognised language code (``zh-CN``, ``en_GB``…), else None."""
    if not value:
        return None
    code = value.strip().lower().replace("_", "-").split("-", 1)[0]
    return code if code in CATALOGUES else None


def translate(lang: str, key: str, **params: object) -> str:
    text = CATALOGUES.get(lang, ZH).get(key)
    if text is None:
        text = ZH.get(key, key)
    if params:
        text = text.format(**params)
    return text


def translator(lang: str) -> Callable[..., str]:
    def t(key: str, **params: object) -> str:
        return translate(lang, key, **params)

    return t


def js_catalogue(lang: str) -> dict[str, str]:
    """The ``js.*`` strings of a language, keys without the prefix."""
    cat = CATALOGUES.get(lang, ZH)
    return {k.removeprefix("js."): v for k, v in cat.items() if k.startswith("js.")}
