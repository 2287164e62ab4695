"""Who may use which route: the one access table of the web console, and the navigation built
from it.

``ROUTE_ROLES`` maps every protected route (its path as declared) to the roles allowed on it. The
router-level dependency (``deps.authorize``) checks each request against it, and a protected
route missing from the table is refused (fail closed). ``PUBLIC_ROUTES`` lists the only routes
without a session; they authenticate otherwise (provider signatures, signed links, API keys) or
not at all (login, health). ``tests/web_console/test_permissions.py`` walks every route of the app
for every role against these two tables. Both are written out literally here, once: a new page
adds its line.
"""

from __future__ import annotations

from typing import NamedTuple

from callcenter.accounts.models import Role

ALL_ROLES: frozenset[str] = frozenset(r.value for r in Role)
STAFF: frozenset[str] = frozenset({Role.ADMIN.value, Role.SUPERVISOR.value, Role.SEAT.value})
SUPERVISORS: frozenset[str] = frozenset({Role.ADMIN.value, Role.SUPERVISOR.value})
ADMINS: frozenset[str] = frozenset({Role.ADMIN.value})
OUTLET_ONLY: frozenset[str] = frozenset({Role.OUTLET.value})

# The access table: route path (as declared) → roles that may use it.
ROUTE_ROLES: dict[str, frozenset[str]] = {
    # Login, home and the seat console (pages.py, sockets.py)
    "/": ALL_ROLES,  # every role has a home page (outlets: their orders)
    "/logout": ALL_ROLES,
    "/api/me": ALL_ROLES,
    "/api/openapi.json": SUPERVISORS,  # the JSON API's description (api_schema.py)
    "/password": ALL_ROLES,
    "/console": STAFF,
    "/ws/console": STAFF,
    "/api/seat/pause": STAFF,
    # The browser phone: its SIP account and the SIP relay to Asterisk (softphone.py)
    "/api/phone": STAFF,
    "/sip": STAFF,
    "/wallboard": SUPERVISORS,
    "/ws/wallboard": SUPERVISORS,
    # Accounts and the audit log (admin.py)
    "/admin/accounts": ADMINS,
    "/admin/accounts/{account_id}/active": ADMINS,
    "/admin/accounts/{account_id}/password": ADMINS,
    "/admin/accounts/{account_id}/sip-password": ADMINS,
    "/admin/accounts/{account_id}/queues": ADMINS,
    "/admin/accounts/{account_id}/phone": ADMINS,
    "/admin/audit": ADMINS,
    "/admin/diagnostics": ADMINS,
    # Residents from the pop and the resident's page (residents.py)
    "/api/residents": STAFF,
    "/api/residents/{resident_id}/phones": STAFF,
    "/api/residents/{resident_id}/identity": STAFF,
    "/api/communities": STAFF,
    "/api/my/calls": STAFF,
    "/residents/{resident_id}": STAFF,
    "/residents/{resident_id}/reveal": STAFF,
    "/residents/{resident_id}/household": STAFF,
    "/residents/{resident_id}/elderly": STAFF,
    # Statistics (reports.py); the /api/stats routes also take the display platform's token
    "/reports": SUPERVISORS,
    "/reports/export": SUPERVISORS,
    "/reports/daily": SUPERVISORS,
    "/reports/scorecard": SUPERVISORS,
    "/reports/orders": SUPERVISORS,
    "/api/stats/report": SUPERVISORS,
    "/api/stats/today": SUPERVISORS,
    "/api/stats/orders": SUPERVISORS,
    "/api/stats/scorecard": SUPERVISORS,
    # Voice menu and hours (admins); out-of-hours items (seats) (ivr_admin.py)
    "/admin/ivr": ADMINS,
    "/admin/ivr/options": ADMINS,
    "/admin/ivr/options/{option_id}/delete": ADMINS,
    "/admin/ivr/options/{option_id}/upload": ADMINS,
    "/admin/ivr/hours": ADMINS,
    "/api/caller-requests": STAFF,
    "/api/caller-requests/{request_id}/done": STAFF,
    "/api/caller-requests/{request_id}/recording": STAFF,
    # Call control, queue login, listen-in, recordings, callbacks (callcontrol.py)
    "/api/call/hangup": STAFF,
    "/api/call/transfer": STAFF,
    "/api/call/dial": STAFF,
    "/api/seat/queues": STAFF,
    "/api/spy": SUPERVISORS,
    "/api/recordings/{linkedid}": STAFF,
    "/api/callbacks": STAFF,
    "/api/callbacks/{item_id}/done": STAFF,
    "/api/followups": SUPERVISORS,
    # Basic data and imports (basic_data.py)
    "/admin/basic": ADMINS,
    "/admin/basic/{kind}": ADMINS,
    "/admin/basic/{kind}/save": ADMINS,
    "/admin/basic/{kind}/export": ADMINS,
    "/admin/basic/{kind}/{item_id}/delete": ADMINS,
    "/admin/import": ADMINS,
    "/admin/import/{job_id}": ADMINS,
    "/api/basic/{kind}": SUPERVISORS,
    "/api/import/{job_id}": ADMINS,
    # The service configuration: category tree and routing rules (config_admin.py)
    "/admin/categories": ADMINS,
    "/admin/categories/save": ADMINS,
    "/admin/categories/{category_id}/delete": ADMINS,
    "/admin/categories/export": ADMINS,
    "/admin/categories/import": ADMINS,
    "/api/categories": ADMINS,
    "/api/categories/{category_id}": ADMINS,
    "/api/categories/{category_id}/delete": ADMINS,
    "/admin/routing": ADMINS,
    "/admin/routing/save": ADMINS,
    "/admin/routing/{rule_id}/delete": ADMINS,
    "/admin/routing/coverage": ADMINS,
    "/admin/routing/export": ADMINS,
    "/admin/routing/import": ADMINS,
    "/api/routing/rules": ADMINS,
    "/api/routing/rules/{rule_id}": ADMINS,
    "/api/routing/rules/{rule_id}/delete": ADMINS,
    "/api/routing/preview": ADMINS,
    "/api/routing/coverage": ADMINS,
    "/admin/calendar": ADMINS,
    "/admin/calendar/save": ADMINS,
    "/admin/calendar/delete": ADMINS,
    "/admin/calendar/import": ADMINS,
    "/admin/calendar/export": ADMINS,
    "/api/calendar": ADMINS,
    "/admin/deadlines": ADMINS,
    "/admin/deadlines/save": ADMINS,
    "/api/deadlines": ADMINS,
    "/admin/templates": ADMINS,
    "/admin/templates/save": ADMINS,
    "/admin/templates/reset": ADMINS,
    "/api/templates": ADMINS,
    "/api/templates/preview": ADMINS,
    "/admin/operations": ADMINS,
    "/admin/operations/save": ADMINS,
    "/api/operations": ADMINS,
    "/admin/operations/queue": ADMINS,
    "/api/operations/queues/{name}": ADMINS,
    "/admin/config": ADMINS,
    "/admin/config/export": ADMINS,
    "/admin/config/dry-run": ADMINS,
    "/admin/config/apply": ADMINS,
    "/api/config": ADMINS,
    # The messaging desk (messages.py)
    "/admin/messages": SUPERVISORS,
    "/admin/messages/{kind}/{row_id}/retry": SUPERVISORS,
    # Work orders: the console's API (orders_api.py), list and detail (orders_pages.py)
    "/api/orders": STAFF,
    "/api/orders/{order_id}/calls": STAFF,
    "/api/orders/suggest": STAFF,
    "/api/dispatch/options": STAFF,
    "/orders": STAFF,
    "/orders/{order_id}": STAFF,
    "/orders/{order_id}/action": STAFF,
    "/orders/{order_id}/links/revoke": STAFF,
    "/orders/{order_id}/public": SUPERVISORS,
    "/orders/{order_id}/attachments": ALL_ROLES,  # outlets: their own orders only
    "/orders/{order_id}/attachments/{attachment_id}": ALL_ROLES,
    # The knowledge base (knowledge.py): seats search and answer; its own roles (editor,
    # reviewer) are checked by callcenter.knowledge.service; managers see the page
    "/api/kb/search": STAFF,
    "/api/kb/suggest": STAFF,
    "/api/kb/articles/{article_id}": STAFF,
    "/api/kb/answer": STAFF,
    "/api/kb/feedback": STAFF,
    "/api/kb/articles": STAFF,
    "/api/kb/articles/{article_id}/{step}": STAFF,
    "/api/kb/synonyms": STAFF,
    "/kb": SUPERVISORS,
    # Editors' and reviewers' pages: staff accounts; the knowledge-base role is checked inside.
    "/kb/articles": STAFF,
    "/kb/articles/new": STAFF,
    "/kb/articles/{article_id}": STAFF,
    "/kb/articles/{article_id}/step": STAFF,
    "/kb/articles/{article_id}/attachments": STAFF,
    "/kb/articles/{article_id}/attachments/{file_id}": STAFF,
    "/kb/articles/{article_id}/attachments/{file_id}/remove": STAFF,
    "/kb/export": SUPERVISORS,
    "/kb/import": SUPERVISORS,
    # The outlet's mobile pages (outlet_pages.py)
    "/outlet": OUTLET_ONLY,
    "/outlet/orders/{order_id}": OUTLET_ONLY,
}

# Routes anyone may use (static files are a mount of their own and need no session either).
PUBLIC_ROUTES: frozenset[str] = frozenset(
    {
        "/login",
        "/healthz",
        # Provider webhooks, authenticated by their signature (sms.views)
        "/sms/twilio/inbound",
        "/sms/twilio/status",
        "/sms/aliyun/inbound",
        # Open311 GeoReport v2: an api_key for POST, as the standard says, and a read key for
        # hotline-taken orders in GET requests (open311.py)
        "/open311/v2/discovery.{fmt}",
        "/open311/v2/services.{fmt}",
        "/open311/v2/services/{service_code}.{fmt}",
        "/open311/v2/requests.{fmt}",
        "/open311/v2/requests/{request_id}.{fmt}",
        "/open311/v2/tokens/{token}.{fmt}",
        # Signed outlet links: the token names one order and one outlet (outlet_pages.py)
        "/o/{token}",
        # The resident's page: the order number and its query code are the key (resident_query.py)
        "/q",
        "/q/rate",
    }
)

# What an account with a temporary password may still do.
PASSWORD_CHANGE_ROUTES: frozenset[str] = frozenset({"/password", "/logout", "/api/me"})

# Where "/" and a successful login lead, by role. A role without a page gets the 403 page.
HOME_BY_ROLE: dict[str, str] = {
    Role.SEAT.value: "/console",
    Role.SUPERVISOR.value: "/wallboard",
    Role.ADMIN.value: "/wallboard",
    Role.OUTLET.value: "/outlet",
}


class NavLink(NamedTuple):
    path: str
    label: str  # catalogue key
    menus: frozenset[str]  # the menus the link is part of: "admin", "orders", "console"
    element_id: str = ""


# The navigation: one table, in the order shown. A page names its menu; a link shows only to the
# roles ``ROUTE_ROLES`` lets through.
NAV: tuple[NavLink, ...] = (
    NavLink("/console", "nav.console", frozenset({"orders"})),
    NavLink("/wallboard", "wallboard.title", frozenset({"admin", "orders"})),
    NavLink("/orders", "nav.orders", frozenset({"admin", "orders", "console"}), "nav-orders"),
    NavLink("/admin/messages", "msg.title", frozenset({"admin"})),
    NavLink("/reports", "stats.title", frozenset({"admin"})),
    NavLink("/reports/orders", "stats.orders_title", frozenset({"admin"})),
    NavLink("/reports/scorecard", "stats.scorecard", frozenset({"admin"})),
    NavLink("/kb", "kb.title", frozenset({"admin"})),
    NavLink("/admin/accounts", "admin.accounts", frozenset({"admin"})),
    NavLink("/admin/audit", "admin.audit", frozenset({"admin"})),
    NavLink("/admin/diagnostics", "diag.title", frozenset({"admin"})),
    NavLink("/admin/basic", "basic.title", frozenset({"admin"})),
    NavLink("/admin/ivr", "ivr.title", frozenset({"admin"})),
    NavLink("/admin/categories", "config.categories", frozenset({"admin"})),
    NavLink("/admin/routing", "config.routing", frozenset({"admin"})),
    NavLink("/admin/calendar", "config.calendar", frozenset({"admin"})),
    NavLink("/admin/deadlines", "config.deadlines", frozenset({"admin"})),
    NavLink("/admin/templates", "config.templates", frozenset({"admin"})),
    NavLink("/admin/operations", "operations.title", frozenset({"admin"})),
    NavLink("/admin/config", "config.file", frozenset({"admin"})),
)


def nav_links(menu: str, role: str) -> list[NavLink]:
    """The links of one menu that this role may follow."""
    return [link for link in NAV if menu in link.menus and role in ROUTE_ROLES.get(link.path, frozenset())]
