"""What the order domain says to people outside the console, in Chinese: the outlets' SMS and the
answers to their SMS replies. Plain text, no links (China's SMS gateways refuse them)."""

from __future__ import annotations

from dispatch.models import Action

SMS_SIGNATURE = "【安宁社区热线】"

# The head of an outlet's SMS, by the action that sends it.
OUTLET_SMS_HEAD: dict[str, str] = {
    Action.REMIND: "催办：",
    Action.SUPERVISE: "督办：",
    Action.REOPEN: "重办：",
    Action.REDISPATCH: "",
}

OUTLET_SMS = (
    "{signature}{head}工单{number}（{kind}{category}{urgent}）{summary}{address}，办结时限{deadline}。"
    "回复“签收 {code}”签收，“进度 {code} 说明”，“办结 {code} 说明”，“退单 {code} 原因”。"
)
OUTLET_SMS_CATEGORY = "/{category}"
OUTLET_SMS_URGENT = "/紧急"
OUTLET_SMS_ADDRESS = "，地址：{address}"

SUPERVISOR_SMS = "{signature}督办：工单{number}（{kind}）已超过办结时限{deadline}，状态{status}。"

# --- e-mail ---------------------------------------------------------------------------------

MAIL_FOOTER = "安宁区社区服务热线"

ORDER_MAIL_SUBJECT = "【安宁社区热线】{action}：工单{number}（{kind}{urgent}）"
ORDER_MAIL = (
    "{outlet}：\n\n"
    "{action}工单 {number}（回复编号 {code}）\n"
    "类型：{kind}{category}{urgent}\n"
    "诉求：{summary}\n"
    "地点：{community} {address}\n"
    "办结时限：{deadline}\n\n"
    "请回复短信“签收 {code}”签收，“进度 {code} 说明”反馈进度，“办结 {code} 说明”办结，"
    "“退单 {code} 原因”退单；或登录网点页面办理。\n\n"
    "安宁区社区服务热线"
)
# The link to the outlet's page for this order, after the text (never a template variable).
ORDER_MAIL_LINK = "本工单办理页面（仅限本工单，限时有效）："

SUPERVISOR_MAIL_SUBJECT = "【安宁社区热线】督办：工单{number}（{kind}）超过办结时限"
SUPERVISOR_MAIL = (
    "工单 {number}（{kind}{category}{urgent}）已超过办结时限 {deadline}，当前状态：{status}。\n"
    "承办网点：{outlet}\n"
    "诉求：{summary}\n"
    "地点：{community} {address}\n\n"
    "安宁区社区服务热线"
)

REOPEN_REVIEW_MAIL_SUBJECT = "【安宁社区热线】重办审核：工单{number}（{kind}）回访不满意"
REOPEN_REVIEW_MAIL = (
    "工单 {number}（{kind}{category}{urgent}）回访结果为不满意（{rating}），请审核：重办或归档。\n"
    "居民意见：{comment}\n"
    "承办网点：{outlet}\n"
    "诉求：{summary}\n"
    "地点：{community} {address}\n\n"
    "安宁区社区服务热线"
)

DAILY_MAIL_SUBJECT = "【安宁社区热线】{scope} {day} 工单日报：新增{created}件，在办{open}件，超期{overdue}件"
DAILY_MAIL = (
    "{scope} {day} 工单日报\n\n"
    "新增工单：{created}\n{by_status}\n"
    "在办工单：{open}\n"
    "超期工单：{overdue}\n{overdue_list}\n\n"
    "安宁区社区服务热线"
)
DAILY_MAIL_STATUS_LINE = "  {status}：{n}"
DAILY_MAIL_OVERDUE_LINE = "  {number} {kind} {summary}（时限 {deadline}，{status}，{outlet}）"

# --- answers to SMS replies ----------------------------------------------------------------

REPLY_HELP = "回复格式：签收 编号；进度 编号 说明；办结 编号 说明；退单 编号 原因。编号见派单短信。"
REPLY_UNKNOWN_SENDER = "本号码未登记为服务网点联系电话，短信未处理。如需登记请联系热线管理员。"
REPLY_UNKNOWN_CODE = "未找到编号{code}的待办工单。{help}"
REPLY_APPLIED = "{verb}：工单{number}。"
REPLY_PROGRESS = "进度已记录"
REPLY_DONE = "已{command}"

# Why a reply was refused, by ``DispatchError.code``.
REPLY_REFUSED: dict[str, str] = {
    "state": "工单{number}当前为{status}，不能{command}。",
    "outlet": "工单{number}不由本网点办理。",
    "role": "本号码不能{command}工单。",
}

# --- residents' SMS (受理回执, progress, rating by reply) ------------------------------------
# Named so an administrators' template store can take them over. China's SMS rules allow one
# fixed, registered link in a template and never a link as a variable: {page} is the resident's
# page from the settings, the same for every message; the order number and query code are the
# variables. No content of the matter is sent (a resident may have asked for confidentiality).

RESIDENT_SMS_RECEIPT = "{signature}您反映的问题已受理，工单号{number}，查询码{code}，可在{page}查询进度。"
RESIDENT_SMS_DISPATCHED = (
    "{signature}您的工单{number}已交承办单位办理，可凭查询码在{page}查看进度。回复TD退订"
)
# 受理 and 派单 in one request: the receipt and the dispatch notice as one message.
RESIDENT_SMS_RECEIPT_DISPATCHED = (
    "{signature}您反映的问题已受理并交承办单位办理，工单号{number}，查询码{code}，"
    "可在{page}查询进度。回复TD退订"
)
RESIDENT_SMS_RESOLVED = "{signature}您的工单{number}已办结，可凭查询码在{page}查看结果并评价。回复TD退订"
RESIDENT_SMS_RATE_ASK = (
    "{signature}回访：工单{number}已办结，请回复数字评价："
    "1非常满意 2满意 3一般 4不满意 5非常不满意。回复TD退订"
)
RESIDENT_REPLY_RATED = "感谢您对工单{number}的评价。"
RESIDENT_REPLY_NO_ORDER = "未找到您待评价的工单。"
RESIDENT_REPLY_OPTED_OUT = "已退订，您将不再收到工单进度和回访短信。"
RESIDENT_REPLY_HELP = "如需评价已办结的工单，请回复数字1至5；退订请回复TD。"
