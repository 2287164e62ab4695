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
    "invalid": "{message}",
}
