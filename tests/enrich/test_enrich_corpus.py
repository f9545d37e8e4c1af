"""A labelled corpus of real user agents and addresses: each hit's expected verdict and client.

Too strict is as wrong as too loose: people reading through Gmail's and Yahoo's proxies,
on Apple Mail without privacy protection, in webmail or on phones must stay human.
"""

from __future__ import annotations

import pytest

from mailbeacon.enrich.classify import judge_hit
from mailbeacon.enrich.geo import Locator
from mailbeacon.enrich.verdict import Signals

GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
YAHOO_PROXY = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"
MAC_WEBKIT = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
)
IOS_WEBKIT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148"
)
IPAD_WEBKIT = (
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148"
)
CHROME_WIN = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
EDGE_WIN = CHROME_WIN + " Edg/120.0.2210.91"
FIREFOX_LINUX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15"
)
SAFARI_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.144 Mobile Safari/537.36"
)
ANDROID_WV = (
    "Mozilla/5.0 (Linux; Android 13; SM-S908B Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/117.0.0.0 Mobile Safari/537.36"
)
OUTLOOK_2016 = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17029; Pro)"
OUTLOOK_MSOFFICE = "Mozilla/4.0 (compatible; ms-office; MSOffice 16)"
OUTLOOK_2013 = (
    "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.2; WOW64; Trident/7.0; .NET4.0E; "
    ".NET4.0C; Microsoft Outlook 15.0.5023; ms-office; MSOffice 15)"
)
OUTLOOK_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Microsoft Outlook/16.80.23121017"
)
OUTLOOK_IOS = "Outlook-iOS/709.2226530.prod.iphone (4.2349.0)"
OUTLOOK_ANDROID = "Outlook-Android/2.0"
THUNDERBIRD_WIN = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Thunderbird/115.5.0"
)
THUNDERBIRD_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.6.0"
SAMSUNG_EMAIL = (
    "Mozilla/5.0 (Linux; Android 13; SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungEmail/6.1.90.16 Chrome/115.0.5790.166 Mobile Safari/537.36"
)
K9 = "K-9 Mail for Android"
SPARK_MAC = "Spark/3.12.4 (Macintosh; Intel Mac OS X 14_2)"
BLUEMAIL = (
    "Mozilla/5.0 (Linux; Android 12; moto g(60)) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/118.0.0.0 Mobile Safari/537.36 BlueMail/1.9.8.17"
)
EM_CLIENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) eM Client/9.2.2157.0"

# (label, user agent, address, kind, method, expected verdict, expected client)
CORPUS: list[tuple[str, str | None, str, str, str, str, str | None]] = [
    # Gmail web and apps: every open comes through the image proxy, and counts.
    ("gmail web", GMAIL_PROXY, "66.249.84.12", "open", "GET", "proxy", "Gmail"),
    ("gmail android app", GMAIL_PROXY, "66.102.8.51", "open", "GET", "proxy", "Gmail"),
    ("gmail ios app", GMAIL_PROXY, "74.125.210.3", "open", "GET", "proxy", "Gmail"),
    ("gmail ipv6", GMAIL_PROXY, "2a00:1450:4001:82b::2001", "open", "GET", "proxy", "Gmail"),
    ("gmail proxy other ua", CHROME_WIN, "66.249.93.5", "open", "GET", "proxy", "Google"),
    ("gmail reader clicks", CHROME_WIN, "81.2.69.160", "click", "GET", "human", "Chrome"),
    # Yahoo and AOL share one proxy.
    ("yahoo web", YAHOO_PROXY, "98.137.11.7", "open", "GET", "proxy", "Yahoo/AOL Mail"),
    ("aol web", YAHOO_PROXY, "74.6.231.20", "open", "GET", "proxy", "Yahoo/AOL Mail"),
    (
        "yahoo ipv6",
        YAHOO_PROXY,
        "2001:4998:124:1507::f000",
        "open",
        "GET",
        "proxy",
        "Yahoo/AOL Mail",
    ),
    ("yahoo reader clicks", SAFARI_MAC, "86.12.4.9", "click", "GET", "human", "Safari"),
    # Apple Mail: privacy protection prefetches from Apple; without it, the reader's own.
    ("mpp macos", MAC_WEBKIT, "17.58.101.4", "open", "GET", "prefetch", "Apple Mail"),
    ("mpp ios", IOS_WEBKIT, "17.58.63.20", "open", "GET", "prefetch", "Apple Mail"),
    ("mpp ipad", IPAD_WEBKIT, "17.121.5.8", "open", "GET", "prefetch", "Apple Mail"),
    ("mpp bare agent", "Mozilla/5.0", "17.58.101.9", "open", "GET", "prefetch", "Apple Mail"),
    ("mpp ipv6", MAC_WEBKIT, "2620:149:a44:f00::b", "open", "GET", "prefetch", "Apple Mail"),
    ("apple mail macos no mpp", MAC_WEBKIT, "81.2.69.160", "open", "GET", "human", "Apple Mail"),
    ("apple mail ios no mpp", IOS_WEBKIT, "92.40.11.3", "open", "GET", "human", "Apple Mail"),
    ("apple mail ipad no mpp", IPAD_WEBKIT, "24.48.1.2", "open", "GET", "human", "Apple Mail"),
    (
        "apple mail ipv6 no mpp",
        IOS_WEBKIT,
        "2a02:c7c:1234::5",
        "open",
        "GET",
        "human",
        "Apple Mail",
    ),
    (
        "apple reader clicks safari",
        SAFARI_IOS,
        "92.40.11.3",
        "click",
        "GET",
        "human",
        "Mobile Safari",
    ),
    # Outlook desktop, Mac, mobile and web.
    ("outlook 2016", OUTLOOK_2016, "81.2.69.161", "open", "GET", "human", "Outlook"),
    ("outlook ms-office", OUTLOOK_MSOFFICE, "62.30.5.1", "open", "GET", "human", "Outlook"),
    ("outlook 2013", OUTLOOK_2013, "90.200.1.1", "open", "GET", "human", "Outlook"),
    ("outlook mac", OUTLOOK_MAC, "73.15.2.9", "open", "GET", "human", "Outlook"),
    ("outlook ios", OUTLOOK_IOS, "172.58.12.1", "open", "GET", "human", "Outlook Mobile"),
    ("outlook android", OUTLOOK_ANDROID, "176.24.3.3", "open", "GET", "human", "Outlook Mobile"),
    ("outlook web edge", EDGE_WIN, "86.150.2.2", "open", "GET", "human", "Edge"),
    ("outlook web chrome", CHROME_WIN, "2a02:c7c:99::1", "open", "GET", "human", "Chrome"),
    ("outlook click edge", EDGE_WIN, "86.150.2.2", "click", "GET", "human", "Edge"),
    # Thunderbird.
    ("thunderbird windows", THUNDERBIRD_WIN, "85.214.1.1", "open", "GET", "human", "Thunderbird"),
    (
        "thunderbird linux",
        THUNDERBIRD_LINUX,
        "2003:e5:1f00::3",
        "open",
        "GET",
        "human",
        "Thunderbird",
    ),
    # Samsung and other Android mail apps.
    ("samsung email", SAMSUNG_EMAIL, "31.94.2.8", "open", "GET", "human", "Samsung Email"),
    ("android webview mail", ANDROID_WV, "109.144.2.1", "open", "GET", "human", "Android mail app"),
    ("k-9 mail", K9, "46.114.3.3", "open", "GET", "human", "K-9 Mail"),
    ("bluemail", BLUEMAIL, "151.38.7.7", "open", "GET", "human", "BlueMail"),
    ("spark mac", SPARK_MAC, "94.5.6.7", "open", "GET", "human", "Spark"),
    ("em client", EM_CLIENT, "79.1.2.3", "open", "GET", "human", "eM Client"),
    ("android chrome click", CHROME_ANDROID, "31.94.2.8", "click", "GET", "human", "Chrome Mobile"),
    ("firefox linux click", FIREFOX_LINUX, "2a01:e0a:1::2", "click", "GET", "human", "Firefox"),
    ("unsubscribe by person", CHROME_WIN, "81.2.69.160", "unsubscribe", "POST", "human", "Chrome"),
    # Security scanners and link checkers.
    ("safe links (EOP)", CHROME_WIN, "40.94.1.20", "click", "GET", "scanner", "Chrome"),
    ("safe links ipv4 b", EDGE_WIN, "104.47.30.1", "click", "GET", "scanner", "Edge"),
    ("azure link check", CHROME_WIN, "20.42.1.1", "click", "GET", "scanner", "Chrome"),
    ("azure open", CHROME_WIN, "13.70.4.5", "open", "GET", "scanner", "Chrome"),
    ("aws checker", FIREFOX_LINUX, "3.84.10.1", "click", "GET", "scanner", "Firefox"),
    ("proofpoint", CHROME_WIN, "148.163.150.2", "click", "GET", "scanner", "Chrome"),
    ("mimecast", CHROME_WIN, "205.139.110.30", "click", "GET", "scanner", "Chrome"),
    (
        "barracuda ua",
        "Barracuda Sentinel (EE)",
        "64.235.150.1",
        "click",
        "GET",
        "scanner",
        "Barracuda",
    ),
    ("barracuda net", CHROME_WIN, "64.235.150.9", "open", "GET", "scanner", "Chrome"),
    ("ironport", CHROME_WIN, "216.71.150.4", "click", "GET", "scanner", "Chrome"),
    ("head probe", CHROME_WIN, "81.2.69.160", "click", "HEAD", "scanner", "Chrome"),
    ("gcp checker", CHROME_WIN, "35.190.1.1", "click", "GET", "scanner", "Chrome"),
    ("hetzner checker", FIREFOX_LINUX, "88.198.3.3", "click", "GET", "scanner", "Firefox"),
    # Crawlers, HTTP libraries, headless browsers.
    (
        "googlebot",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "66.249.66.1",
        "click",
        "GET",
        "bot",
        "Googlebot",
    ),
    (
        "bingbot",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "157.55.39.1",
        "click",
        "GET",
        "bot",
        "bingbot",
    ),
    (
        "ahrefs",
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
        "54.36.148.1",
        "click",
        "GET",
        "bot",
        "AhrefsBot",
    ),
    ("curl", "curl/8.4.0", "81.2.69.160", "click", "GET", "bot", "curl"),
    ("curl open", "curl/7.88.1", "2a01:4f8::1", "open", "GET", "bot", "curl"),
    ("wget", "Wget/1.21.3", "81.2.69.160", "click", "GET", "bot", "Wget"),
    (
        "python-requests",
        "python-requests/2.31.0",
        "81.2.69.160",
        "click",
        "GET",
        "bot",
        "Python HTTP library",
    ),
    ("urllib", "Python-urllib/3.11", "81.2.69.160", "open", "GET", "bot", "Python HTTP library"),
    ("go", "Go-http-client/1.1", "81.2.69.160", "click", "GET", "bot", "HTTP library"),
    (
        "headless chrome",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/120.0.6099.71 Safari/537.36",
        "81.2.69.160",
        "click",
        "GET",
        "bot",
        "Headless browser",
    ),
    (
        "slack preview",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "54.1.1.1",
        "click",
        "GET",
        "bot",
        "Link preview",
    ),
    ("no agent", None, "81.2.69.160", "open", "GET", "bot", None),
]


# The device type and model of every human reader in the corpus; every other verdict
# hides the reader, so its device is unknown (None, None).
READER_DEVICES: dict[str, tuple[str, str | None]] = {
    "gmail reader clicks": ("desktop", None),
    "yahoo reader clicks": ("desktop", "Mac"),
    "apple mail macos no mpp": ("desktop", "Mac"),
    "apple mail ios no mpp": ("mobile", "iPhone"),
    "apple mail ipad no mpp": ("tablet", "iPad"),
    "apple mail ipv6 no mpp": ("mobile", "iPhone"),
    "apple reader clicks safari": ("mobile", "iPhone"),
    "outlook 2016": ("desktop", None),
    "outlook ms-office": ("desktop", None),
    "outlook 2013": ("desktop", None),
    "outlook mac": ("desktop", "Mac"),
    "outlook ios": ("mobile", "iPhone"),
    "outlook android": ("mobile", None),
    "outlook web edge": ("desktop", None),
    "outlook web chrome": ("desktop", None),
    "outlook click edge": ("desktop", None),
    "thunderbird windows": ("desktop", None),
    "thunderbird linux": ("desktop", None),
    "samsung email": ("mobile", "SM-A536B"),
    "android webview mail": ("mobile", "SM-S908B"),
    "k-9 mail": ("mobile", None),
    "bluemail": ("mobile", "g(60)"),
    "spark mac": ("desktop", "Mac"),
    "em client": ("desktop", None),
    "android chrome click": ("mobile", "Pixel 8"),
    "firefox linux click": ("desktop", None),
    "unsubscribe by person": ("desktop", None),
}


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 60
    assert len({c[0] for c in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize(
    ("label", "ua", "ip", "kind", "method", "verdict", "client"), CORPUS, ids=[c[0] for c in CORPUS]
)
def test_corpus(
    label: str, ua: str | None, ip: str, kind: str, method: str, verdict: str, client: str | None
) -> None:
    judged = judge_hit(ua, ip, Signals(kind, method), Locator())
    assert (judged.verdict.name, judged.client) == (verdict, client), judged.verdict.reason
    assert judged.verdict.reason


@pytest.mark.parametrize(
    ("label", "ua", "ip", "kind", "method", "verdict"),
    [c[:6] for c in CORPUS],
    ids=[c[0] for c in CORPUS],
)
def test_corpus_devices(
    label: str, ua: str | None, ip: str, kind: str, method: str, verdict: str
) -> None:
    judged = judge_hit(ua, ip, Signals(kind, method), Locator())
    expected = READER_DEVICES.get(label, (None, None))
    assert (judged.device, judged.device_model) == expected


def test_every_human_reader_has_a_device_type() -> None:
    humans = {c[0] for c in CORPUS if c[5] == "human"}
    assert set(READER_DEVICES) == humans


def test_proxy_opens_have_no_place_or_device() -> None:
    judged = judge_hit(GMAIL_PROXY, "66.249.84.12", Signals("open"), Locator())
    assert (judged.device, judged.device_model, judged.os, judged.place.country) == (
        None,
        None,
        None,
        None,
    )


def test_every_human_proxy_still_counts_as_a_human_open() -> None:
    for label, ua, ip, kind, method, verdict, _ in CORPUS:
        if verdict in ("human", "proxy"):
            judged = judge_hit(ua, ip, Signals(kind, method), Locator())
            assert judged.verdict.counts_as_human, label
