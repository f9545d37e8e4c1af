"""Who fetched: mail client, device type and model and OS from a user agent, and what
kind of agent it is.

ua-parser (its regex rules, through its caching resolver; the native `ua-parser-rs`
resolver when installed) names browsers, OSes and devices. It does not know most mail
clients and mail proxies, so our own small table of rules runs first. Every answer is
cached by the exact user-agent string: a campaign's hits come from a few hundred
distinct agents, so the cache hit rate is what makes enrichment cheap.

Device. `device` is the type a report groups by: `desktop`, `mobile` or `tablet`.
ua-parser names the device (family, brand, model) and the OS but has no type, so the
type is read from what it names: an iPad or an Android tablet is a tablet; iOS,
Android and other phone OSes are mobile; Windows, macOS, Linux and ChromeOS are
desktop. Mail apps that send no browser token (iOS Mail, Outlook for Android, K-9)
get theirs the same way, from the OS and device in their agent. Only what ua-parser
leaves open is ours: an Android agent with a browser engine but no `Mobile` token is a
tablet (Android's own convention, which ua-parser applies only to unbranded devices),
and Outlook's desktop agent that names no OS (`ms-office`) is a desktop.
`device_model` is the model as the agent gives it, without the brand (`iPhone`,
`iPad`, `Pixel 8`, `SM-S918B`), or `Mac` for a Macintosh agent; PCs name no hardware,
so a Windows or Linux reader has none, nor has Chrome's reduced Android agent (`K`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import ua_parser

# proxy: a mailbox provider's image proxy; mail: a mail client; browser: a web browser
# (webmail or a clicked link); bot: crawlers, HTTP libraries, headless browsers;
# scanner: a security gateway that names itself; apple_webkit: Apple Mail's generic
# WebKit agent, which Mail Privacy Protection also uses (the address tells them apart).
AgentKind = Literal["proxy", "mail", "browser", "bot", "scanner", "apple_webkit", "unknown"]
DeviceType = Literal["desktop", "mobile", "tablet"]


@dataclass(frozen=True, slots=True)
class Agent:
    kind: AgentKind
    client: str | None
    device: DeviceType | None
    os: str | None
    why: str = ""  # for bots and scanners: what in the agent gave it away
    device_model: str | None = None


# Our rules, in order; the first match names the client. (pattern, kind, client, why)
_RULES: tuple[tuple[re.Pattern[str], AgentKind, str, str], ...] = tuple(
    (re.compile(p, re.I), k, c, w)
    for p, k, c, w in (
        (r"GoogleImageProxy", "proxy", "Gmail", ""),
        (r"YahooMailProxy", "proxy", "Yahoo/AOL Mail", ""),
        (r"Superhuman", "proxy", "Superhuman", ""),
        (
            r"HeadlessChrome|PhantomJS|Puppeteer|Playwright|Electron/.*Headless",
            "bot",
            "Headless browser",
            "a headless browser",
        ),
        (r"Barracuda", "scanner", "Barracuda", "Barracuda's link scanner names itself"),
        (r"Mimecast", "scanner", "Mimecast", "Mimecast's link scanner names itself"),
        (r"Proofpoint|urldefense", "scanner", "Proofpoint", "Proofpoint names itself"),
        (r"Trend ?Micro|TMUFE", "scanner", "Trend Micro", "Trend Micro names itself"),
        (
            r"Symantec|Forcepoint|Sophos|Zscaler|FireEye|Cisco.?IronPort|SafeLinks",
            "scanner",
            "Security scanner",
            "a security gateway names itself",
        ),
        (r"^curl/", "bot", "curl", "an HTTP library (curl)"),
        (r"^Wget/", "bot", "Wget", "an HTTP library (Wget)"),
        (
            r"python-requests|python-urllib|aiohttp|python-httpx|httpx/|Python/\d",
            "bot",
            "Python HTTP library",
            "an HTTP library (Python)",
        ),
        (
            r"Go-http-client|okhttp|Java/\d|Apache-HttpClient|libwww-perl|node-fetch|axios/|"
            r"undici|Ruby|Faraday|PostmanRuntime|Scrapy",
            "bot",
            "HTTP library",
            "an HTTP library",
        ),
        (
            r"facebookexternalhit|Slackbot|LinkedInBot|Twitterbot|WhatsApp|TelegramBot|"
            r"Discordbot|SkypeUriPreview|BingPreview|Applebot",
            "bot",
            "Link preview",
            "a link-preview fetcher",
        ),
        (r"Microsoft Outlook|ms-office|MSOffice|Outlook-Express", "mail", "Outlook", ""),
        (r"Outlook-iOS|Outlook-Android|OutlookMobile", "mail", "Outlook Mobile", ""),
        (r"Thunderbird", "mail", "Thunderbird", ""),
        (r"SamsungEmail|Samsung ?Email", "mail", "Samsung Email", ""),
        (r"K-9 Mail|K9Mail", "mail", "K-9 Mail", ""),
        (r"FairEmail", "mail", "FairEmail", ""),
        (r"BlueMail", "mail", "BlueMail", ""),
        (r"AquaMail|Aqua Mail", "mail", "Aqua Mail", ""),
        (r"Spark/|SparkDesktop|Readdle", "mail", "Spark", ""),
        (r"Airmail", "mail", "Airmail", ""),
        (r"Postbox", "mail", "Postbox", ""),
        (r"eM ?Client", "mail", "eM Client", ""),
        (r"Mailbird", "mail", "Mailbird", ""),
        (r"YahooMobileMail|YMobile", "mail", "Yahoo Mail app", ""),
    )
)

_CRAWLER = re.compile(r"bot\b|crawl|spider|slurp|archiver|monitor|checker|validator", re.I)
# Apple Mail renders with a WebKit agent that lacks the Version/ and Safari/ tokens a
# browser sends. Mail Privacy Protection's prefetcher uses the same agent.
_APPLE_WEBKIT = re.compile(
    r"^Mozilla/5\.0 \((Macintosh|iPhone|iPad)[^)]*\) AppleWebKit/[\d.]+ "
    r"\(KHTML, like Gecko\)( Mobile/\w+)?$"
)
_ANDROID_WEBVIEW = re.compile(r"; wv\)")

_MAIL_FAMILIES = {"Apple Mail": "Apple Mail", "Outlook": "Outlook", "Thunderbird": "Thunderbird"}


@lru_cache(maxsize=1)
def _parser() -> ua_parser.Parser:
    # ua-parser's global parser (its best resolver behind its own small cache); our
    # `classify` cache in front of it answers nearly every repeat.
    return ua_parser.parser


# ua-parser's OS families, by the kind of device they run on.
_MOBILE_OS = frozenset(
    {"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Firefox OS", "Symbian OS"}
)
_DESKTOP_OS = frozenset(
    {"Windows", "Mac OS X", "Mac OS", "Chrome OS", "Linux", "Ubuntu", "Kubuntu", "Lubuntu",
     "Debian", "Linux Mint", "Fedora", "Red Hat", "CentOS", "SUSE", "openSUSE", "Arch Linux",
     "Gentoo", "Slackware", "FreeBSD", "OpenBSD", "NetBSD", "Solaris"}
)  # fmt: skip
_TABLET_FAMILIES = frozenset({"iPad", "Generic Tablet", "Kindle"})
_PHONE_FAMILIES = frozenset({"iPhone", "iPod", "Generic Smartphone", "Generic Feature Phone"})
# ua-parser's stand-ins when the agent names no model: its generic devices, and "K",
# the placeholder Chrome's reduced user agent sends instead of the Android model.
_NO_MODEL = frozenset({"Smartphone", "Tablet", "Feature Phone", "K", "Other", ""})
# Clients that exist only on computers: their type when the agent names no OS.
_DESKTOP_CLIENTS = frozenset({"Outlook", "Thunderbird", "Postbox", "eM Client", "Mailbird"})


def _device_type(ua: str, r: ua_parser.Result, client: str | None) -> DeviceType | None:
    family = r.device.family if r.device else "Other"
    brand = (r.device.brand or "") if r.device else ""
    model = (r.device.model or "") if r.device else ""
    os_family = r.os.family if r.os else "Other"
    if family in _TABLET_FAMILIES or brand == "Generic_Android_Tablet" or "Tablet" in model:
        return "tablet"
    if os_family == "Android" and "Safari/" in ua and "Mobile" not in ua:
        # Android's convention: a browser engine without the `Mobile` token is a tablet.
        return "tablet"
    if family in _PHONE_FAMILIES or os_family in _MOBILE_OS:
        return "mobile"
    if family == "Mac" or os_family in _DESKTOP_OS:
        return "desktop"
    if os_family == "Other" and client in _DESKTOP_CLIENTS:
        return "desktop"
    return None


def _device_model(r: ua_parser.Result) -> str | None:
    d = r.device
    if d is None or d.family in ("Other", "Spider") or d.brand == "Generic":
        return None
    model = (d.model or d.family).strip()
    return None if model in _NO_MODEL else model


def _reader(kind: AgentKind, client: str | None, ua: str, r: ua_parser.Result) -> Agent:
    """A reader's agent: its client with ua-parser's device and OS."""
    os_family = r.os.family if r.os and r.os.family != "Other" else None
    return Agent(
        kind, client, _device_type(ua, r, client), os_family, device_model=_device_model(r)
    )


def _parse(ua: str) -> Agent:
    for pattern, kind, client, why in _RULES:
        if pattern.search(ua):
            if kind in ("proxy", "bot", "scanner"):
                # A proxy's or a machine's device and OS are not a reader's.
                return Agent(kind, client, None, None, why)
            return _reader(kind, client, ua, _parser().parse(ua))
    r = _parser().parse(ua)
    family = r.user_agent.family if r.user_agent else "Other"
    if (r.device and r.device.family == "Spider") or _CRAWLER.search(ua):
        return Agent(
            "bot",
            family if family != "Other" else "Crawler",
            None,
            None,
            "a crawler names itself in its user agent",
        )
    if _APPLE_WEBKIT.match(ua):
        return _reader("apple_webkit", "Apple Mail", ua, r)
    if family in _MAIL_FAMILIES:
        return _reader("mail", _MAIL_FAMILIES[family], ua, r)
    if _ANDROID_WEBVIEW.search(ua):
        # A mail app rendering in Android's WebView; ua-parser calls it a WebView.
        return _reader("mail", "Android mail app", ua, r)
    if family == "Other":
        return _reader("unknown", None, ua, r)
    return _reader("browser", family, ua, r)


_NO_AGENT = Agent("bot", None, None, None, "no user agent: people's mail clients send one")


@lru_cache(maxsize=16384)
def classify(ua: str | None) -> Agent:
    """The agent behind a user-agent string (cached by the exact string)."""
    if not ua or not ua.strip():
        return _NO_AGENT
    return _parse(ua.strip())


def cache_hit_rate() -> float:
    info = classify.cache_info()
    total = info.hits + info.misses
    return info.hits / total if total else 0.0
