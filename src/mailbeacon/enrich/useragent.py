"""Who fetched: mail client, device and OS from a user agent, and what kind of agent it is.

ua-parser (its regex rules, through its caching resolver; the native `ua-parser-rs`
resolver when installed) names browsers, OSes and devices. It does not know most mail
clients and mail proxies, so our own small table of rules runs first. Every answer is
cached by the exact user-agent string: a campaign's hits come from a few hundred
distinct agents, so the cache hit rate is what makes enrichment cheap.
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


@dataclass(frozen=True, slots=True)
class Agent:
    kind: AgentKind
    client: str | None
    device: str | None
    os: str | None
    why: str = ""  # for bots and scanners: what in the agent gave it away


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


def _device(result: ua_parser.Result) -> str | None:
    d = result.device
    if d is None or d.family in ("Other", "Spider"):
        return None
    if d.family in ("Mac", "iPhone", "iPad"):
        return d.family
    if d.family.startswith("Generic Smartphone") or d.family.startswith("Generic Android"):
        return "Phone"
    return d.family


def _parse(ua: str) -> Agent:
    for pattern, kind, client, why in _RULES:
        if pattern.search(ua):
            if kind in ("proxy", "bot", "scanner"):
                # A proxy's or a machine's device and OS are not a reader's.
                return Agent(kind, client, None, None, why)
            r = _parser().parse(ua)
            return Agent(kind, client, _device(r), r.os.family if r.os else None)
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
    os_family = r.os.family if r.os else None
    device = _device(r)
    if _APPLE_WEBKIT.match(ua):
        return Agent("apple_webkit", "Apple Mail", device, os_family)
    if family in _MAIL_FAMILIES:
        return Agent("mail", _MAIL_FAMILIES[family], device, os_family)
    if _ANDROID_WEBVIEW.search(ua):
        # A mail app rendering in Android's WebView; ua-parser calls it a WebView.
        return Agent("mail", "Android mail app", device, os_family)
    if family == "Other":
        return Agent("unknown", None, device, os_family if os_family != "Other" else None)
    return Agent("browser", family, device, os_family)


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
