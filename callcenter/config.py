"""Settings, from the environment (prefix ``CALLCENTER_``) or a ``.env`` file.

Secrets (AMI secret, session key) are never in the repository: when not configured they are
generated once and kept in ``<data_dir>/secrets.json`` (mode 0600).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
from datetime import timedelta, timezone
from pathlib import Path

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Lanzhou keeps China Standard Time (no daylight saving): what people read is in this zone.
CHINA_TZ = timezone(timedelta(hours=8), "CST")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALLCENTER_", env_file=".env", extra="ignore")

    # Where the product keeps its state: the SQLite file, secrets, rendered Asterisk instance.
    data_dir: Path = Path("var")
    database_url: str = ""  # empty: sqlite:///<data_dir>/callcenter.db
    # PostgreSQL with two roles (README): migrations run as the owner role of this URL, and grant
    # database_app_role (the role of database_url) its rights; the app's role owns no table.
    migration_database_url: str = ""  # empty: database_url
    database_app_role: str = ""
    redis_url: str = ""  # empty: in-process event bus

    web_host: str = "127.0.0.1"
    web_port: int = 8000
    session_secret: str = ""
    # Production unless told otherwise: `callcenter demo` and the tests turn it off explicitly.
    # In production the app refuses to start with a demo password or a weak secret.
    production: bool = True
    # Proxies whose X-Forwarded-Proto/For are believed (uvicorn's forwarded_allow_ips): behind a
    # TLS-terminating proxy the request counts as https (Secure cookie, HSTS).
    trusted_proxies: str = "127.0.0.1"
    # Failed logins (and wrong current passwords) within the window: per account and address,
    # per address (an office behind one NAT shares it: a higher ceiling), per account from any
    # address (many addresses guessing one password).
    login_window_s: int = 300
    login_max_failures: int = 5
    login_max_failures_per_address: int = 50
    login_max_failures_per_account: int = 20

    # Asterisk. AMI and FastAGI stay on loopback unless an operator says otherwise.
    asterisk_mode: str = "auto"  # auto | system | chroot
    asterisk_root: Path = Path("/var/cache/callcenter/asterisk-sid")  # the Debian sid root (chroot mode)
    asterisk_mirror: str = ""  # empty: taken from the machine's apt sources
    # The unprivileged user (and group) Asterisk runs as (-U/-G), created if absent; files it
    # writes are its own, readable by its group (put the app's user in it). Empty: the user that
    # starts it (as with an operator's own asterisk.service).
    asterisk_user: str = "callcenter-pbx"
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_user: str = "callcenter"  # tools (doctor, benchmarks, CLI): every event
    ami_secret: str = ""  # the tools' AMI user
    ami_engine_secret: str = ""  # the engine's AMI user: a secret of its own
    # The FastAGI routes only answer requests whose URL carries this key (?k=): the dialplan has it.
    agi_secret: str = ""
    # Call-control commands on the bus are signed with it (HMAC-SHA256) by the web workers; the
    # engine drops unsigned or forged ones.
    bus_secret: str = ""
    agi_host: str = "127.0.0.1"
    agi_port: int = 4573
    # SIP for seats' phones: UDP and TCP on sip_host:sip_port, TLS on sip_host:sip_tls_port when a
    # certificate and key are there (sip_tls_cert/sip_tls_key, or the pair `callcenter asterisk
    # tls-cert` writes into <data_dir>/tls). A LAN deployment sets sip_host to the LAN address
    # (or 0.0.0.0 for every interface).
    sip_host: str = "127.0.0.1"
    sip_port: int = 5060
    sip_tcp: bool = True
    sip_tls_port: int = 5061  # 0: no TLS transport
    sip_tls_cert: str = ""  # PEM; empty: <data_dir>/tls/sip.crt when it exists
    sip_tls_key: str = ""  # PEM; empty: <data_dir>/tls/sip.key when it exists
    # Behind NAT: the public address put in SDP and SIP headers, and the networks that are local
    # (phones there get the private address). Empty: no NAT handling.
    sip_external_media_address: str = ""
    sip_external_signaling_address: str = ""
    sip_local_net: list[str] = []
    # What the administrator's provisioning page tells phones to use (empty: sip_host, or the
    # external signaling address when set).
    sip_server_name: str = ""
    # The digest realm seat passwords are hashed with; changing it invalidates stored SIP
    # passwords made for the old realm (each account keeps the realm its digest was made for).
    sip_realm: str = "callcenter"
    # How many phones (contacts) one seat may register at once: a desk phone and a softphone.
    sip_max_contacts: int = 3
    # Asterisk's own default range: a bridged call holds four ports (two channels, RTP and RTCP),
    # so 10,000 ports carry 2,500 calls (the former 1,000 stopped a 2-core machine at 250).
    rtp_start: int = 10000
    rtp_end: int = 19999
    # Asterisk's HTTP server (SIP over WebSocket for browser phones): loopback only; browsers reach
    # it through the console's /sip route on the console's own origin.
    asterisk_http_port: int = 8088

    # Where the hotline's calls come from. Each trunk is matched on its source address.
    carrier_match: str = "127.0.0.1"
    trunk12345_match: str = "127.0.0.2"
    trunk12345_queue: str = "q12345"  # its own queue (the first service number's when missing)
    trunk12345_priority: int = 5
    # The 12345 platform's custom SIP headers; each city platform names them its own way.
    header_12345_order: str = "X-12345-OrderNo"
    header_12345_summary: str = "X-12345-Summary"

    # The doctor's test call: a diagnostics number, queue and seat that no resident reaches.
    doctor_did: str = "96399"
    doctor_extension: str = "1999"
    doctor_sip_port: int = 5099

    default_region: str = "CN"
    default_area_code: str = "931"  # Lanzhou, for 7/8-digit local landline numbers
    queue_timeout: int = 300
    # The national targets (GB/T 33358-2016): answer within 15 s; answered rate at least 95 %.
    service_level_s: int = 15
    answered_rate_alert: float = 0.95
    # Why a seat may pause (the console offers these; nothing else reaches Asterisk).
    pause_reasons: list[str] = ["用餐", "休息", "培训", "整理工单", "会议"]
    agi_read_timeout: float = 5.0
    # The incoming route's reads (the resident, the last seat) on a database reached from a thread:
    # past this the call goes on to its queue and the engine finds the resident for the pop.
    route_budget_s: float = 1.0

    # SMS, e-mail, grid/approval webhooks, Open311
    # How outside services reach this app's webhooks (Twilio signs this exact URL).
    public_base_url: str = ""  # empty: http://<web_host>:<web_port>
    sms_provider: str = "log"  # log | twilio | aliyun
    sms_from: str = ""  # the Twilio sender number (E.164)
    sms_china: bool = True  # domestic delivery rules: no links, 70-character segments
    sms_max_segments: int = 3
    sms_max_attempts: int = 8
    sms_retry_base_s: float = 2.0
    sms_retry_max_s: float = 300.0
    sms_timeout_s: float = 15.0  # the provider's answer to one request; later, it is asked first
    sms_claim_timeout_s: float = 60.0  # a message "sending" longer than this is checked with the provider
    sms_poll_interval_s: float = 1.0
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""  # a secret: environment or .env, never the repository
    twilio_api_base: str = ""  # empty: Twilio's own API; a local stand-in for tests and the demo
    aliyun_access_key_id: str = ""
    aliyun_access_key_secret: str = ""  # a secret
    aliyun_endpoint: str = "dysmsapi.aliyuncs.com"
    aliyun_protocol: str = "https"
    aliyun_sign_name: str = ""
    aliyun_template_code: str = ""  # an approved template with one ${content} parameter
    # Aliyun pushes replies (SmsUp, HTTP batch push) unsigned: the push URL carries a token
    # (?token=); empty: refused. To rotate, put the new token here and the old one in
    # aliyun_inbound_token_previous until Aliyun's console has the new URL, then empty it.
    aliyun_inbound_token: str = ""
    aliyun_inbound_token_previous: str = ""
    # The addresses Aliyun pushes from (CIDRs, e.g. ["100.64.0.0/10"]); empty: any address.
    aliyun_inbound_sources: list[str] = []
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = ""  # a secret
    smtp_tls: str = "none"  # none | starttls | tls
    smtp_timeout_s: float = 20.0
    mail_from: str = "hotline@localhost"
    # ``callcenter demo`` receives its own e-mail here (aiosmtpd, kept in <data_dir>/demo-mailbox)
    demo_smtp_port: int = 2525
    supervisor_emails: list[str] = []
    # Residents' sensitive data (ID number, phones, health, household): a seat sees it for the
    # residents of its calls within this many hours and of its open orders; anyone else's needs a
    # stated reason, at most this many an hour per account, and this many lookups of others'
    # records within resident_burst_window_min alert the supervisors (wallboard and e-mail).
    resident_link_hours: float = 4.0
    resident_reveals_per_hour: int = 10
    resident_reveal_grant_min: float = 15.0  # a stated reason opens that record for this long
    resident_burst_lookups: int = 5
    resident_burst_window_min: float = 10.0
    # How long an outlet's e-mailed link to one order works (it can also be revoked earlier).
    outlet_link_hours: float = 72.0
    daily_summary_at: str = "18:00"  # China time the daily summaries go out; empty: never
    grid_webhook_url: str = ""
    approval_webhook_url: str = ""
    webhook_secret: str = ""  # generated into secrets.json unless given
    webhook_max_attempts: int = 8
    open311_api_keys: list[str] = []  # empty: POST requests.json is refused
    # Secrets for reading hotline-taken orders through GET requests (the city platform's key).
    # Without one an Open311 client sees only the requests filed through Open311.
    open311_read_keys: list[str] = []
    open311_jurisdiction_id: str = "anning.lanzhou.gov.cn"
    supervisor_phones: list[str] = []  # mobiles that get the 督办 SMS (e-mail: supervisor_emails)
    deadline_check_s: float = 30.0  # how often the scheduler looks for 催办 / 督办

    # The resident's page (order number + query code), as registered with the SMS platform: the
    # one link a resident's SMS may carry (fixed, never a variable). Empty: public_url("/q").
    resident_page_url: str = ""
    # Rating replies and page ratings are taken for this long after 办结.
    resident_rating_days: int = 15
    # An SMS asking for the rating unanswered this long: the 回访 becomes a seat's task.
    resident_rating_reply_h: float = 48.0

    def resident_page(self) -> str:
        return self.resident_page_url or self.public_url("/q")

    def public_url(self, path: str) -> str:
        base = self.public_base_url or f"http://{self.web_host}:{self.web_port}"
        return base.rstrip("/") + path

    # Which Asterisk's queue_log this engine follows (its reading position is kept under this
    # name). With several Asterisk servers, give each engine its own, and each Asterisk its own
    # `systemname` so call ids never collide.
    stats_source: str = "queue_log"
    # An abandoned call counts as called back when its caller is answered within this time.
    stats_callback_window_h: float = 24.0
    # Managers who get the printable daily report each morning (China time), and when.
    stats_report_recipients: list[str] = []
    stats_report_hour: int = 7
    # The display platform's bearer token for /api/stats/* (empty: sessions only).
    stats_api_token: str = ""
    # The seat scorecard (绩效): weights of each part (they need not add up to 1).
    stats_score_weights: dict[str, float] = {
        "handled": 0.3,
        "handle_time": 0.2,
        "satisfaction": 0.3,
        "on_time": 0.2,
    }
    # The handle time a seat is measured against in the scorecard (s).
    stats_target_aht_s: float = 300.0
    # IVR, hours, priority
    # Freeze "now" for the opening-hours check (ISO date-time, China time when naive): tests, drills.
    clock: str = ""
    ivr_wait_s: int = 5  # silence after the menu before it is repeated
    ivr_tries: int = 3  # menu plays (first + two repeats) before a seat takes the call
    priority_vulnerable: int = 3  # QUEUE_PRIO of elderly living alone / vulnerable residents
    preferred_seat_ring_s: int = 10  # a returning caller's last seat rings this long first
    preferred_seat_window_h: int = 24
    voicemail_max_s: int = 120
    prompt_upload_max_bytes: int = 5 * 1024 * 1024
    # Benchmarks only: a number whose calls take the menu path with static dialplan instead of
    # the FastAGI route (benchmarks/bench_full_path.py compares the two). Empty: not rendered.
    bench_static_did: str = ""

    # Call control, recordings, callbacks, follow-ups
    # Where calls to outside numbers go (click-to-call, transfers out, callbacks, follow-ups):
    # a carrier's SIP URI; and the 12345 platform's, for transferring a call back to it.
    outbound_contact: str = ""
    trunk12345_contact: str = ""
    # The number residents see when the hotline calls them (empty: the first service number).
    outbound_caller_id: str = ""
    recording_retention_days: int = 180
    callback_digit: str = "1"  # pressed while waiting in a queue: keep my place, call me back
    callback_offer_after_s: int = 30  # the offer is announced after this wait
    callback_attempts: int = 3
    callback_retry_s: int = 120
    # Missed calls (abandoned in queue, out of hours) are listed for the seats; with this on the
    # engine also calls them back by itself when a seat of the queue is free in opening hours.
    missed_callbacks_auto: bool = True
    # A missed-call callback waits at most this long for its call to end (the talk included).
    missed_callback_max_s: float = 3 * 3600.0
    followup_attempts: int = 3
    followup_retry_s: int = 600
    followup_digit_wait_s: int = 10
    followup_after_call: bool = False  # every answered hotline call gets a follow-up call too
    # The dial-out policy (callcenter/dialout/policy.py): only valid mainland-China mobile and
    # fixed-line numbers are called, and numbers under these E.164 prefixes (e.g. "+852").
    dialout_extra_prefixes: list[str] = []
    # Automatic calls (callbacks in queue and follow-ups) to one number per China day.
    dialout_daily_cap: int = 3
    # Out-of-hours voicemails and callback requests one caller may leave per China day.
    caller_requests_daily_cap: int = 3
    # Voicemails older than this are deleted (a resident's voice is not kept for ever).
    voicemail_retention_days: int = 90
    voicemail_purge_interval_s: float = 3600.0

    @field_validator("aliyun_inbound_sources")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for net in value:
            ipaddress.ip_network(net, strict=False)  # a ValueError names the bad entry
        return value

    @field_validator("sip_realm")
    @classmethod
    def _realm(cls, value: str) -> str:
        # Rendered into pjsip.conf and hashed into every seat's digest: a plain token only.
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", value):
            raise ValueError(f"not a SIP realm: {value!r}")
        return value

    def sip_tls_files(self) -> tuple[Path, Path] | None:
        """The TLS certificate and key the SIP TLS transport uses, or None (no TLS transport)."""
        if self.sip_tls_port <= 0:
            return None
        cert = Path(self.sip_tls_cert) if self.sip_tls_cert else self.data_dir / "tls" / "sip.crt"
        key = Path(self.sip_tls_key) if self.sip_tls_key else self.data_dir / "tls" / "sip.key"
        return (cert, key) if cert.is_file() and key.is_file() else None

    @field_validator("header_12345_order", "header_12345_summary")
    @classmethod
    def _header_name(cls, value: str) -> str:
        # The names go into PJSIP_HEADER(read,<name>) in an AGI command: a token, nothing else.
        if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", value):
            raise ValueError(f"not a SIP header name: {value!r}")
        return value

    @property
    def ami_engine_user(self) -> str:
        """The engine's own AMI user: its own secret, only the events it reads (ENGINE_EVENTS)."""
        return f"{self.ami_user}-engine"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'callcenter.db').resolve()}"

    def asterisk_instance_dir(self) -> Path:
        """The rendered Asterisk instance (etc, run, log, spool, sounds) as the host sees it."""
        return self.data_dir.resolve() / "asterisk"

    def load_secrets(self) -> Settings:
        """Fill unset secrets from <data_dir>/secrets.json, generating them the first time."""
        path = self.data_dir / "secrets.json"
        stored: dict[str, str] = {}
        if path.exists():
            stored = json.loads(path.read_text())
        changed = False
        for key in SECRET_KEYS:
            if getattr(self, key):
                continue
            if key not in stored:
                stored[key] = secrets.token_urlsafe(24)
                changed = True
            setattr(self, key, stored[key])
        if changed:
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(stored, fh)
        if path.exists():
            path.chmod(0o600)  # O_CREAT's mode applies only to a new file; an old one is fixed here
        return self


# The secrets generated into secrets.json when not configured.
SECRET_KEYS = (
    "ami_secret",
    "ami_engine_secret",
    "session_secret",
    "webhook_secret",
    "agi_secret",
    "bus_secret",
)


class _Holder:
    settings: Settings | None = None


def get_settings() -> Settings:
    if _Holder.settings is None:
        _Holder.settings = Settings().load_secrets()
    return _Holder.settings


def set_settings(settings: Settings) -> Settings:
    """Install settings for this process (tests and the CLI's options)."""
    _Holder.settings = settings.load_secrets()
    return _Holder.settings
