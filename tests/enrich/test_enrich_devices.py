"""Device type and model from real user agents: what "opens by device" is made of.

`device` is `desktop`, `mobile` or `tablet`; `device_model` is the model the agent
names (none for PCs, which name no hardware). Mail apps that send no browser token
still get their type from the OS and device in their agent. A hidden reader (image
proxy, privacy prefetch, scanner, bot) has neither.
"""

from __future__ import annotations

import pytest

from mailbeacon.enrich.classify import judge_hit
from mailbeacon.enrich.geo import Locator
from mailbeacon.enrich.useragent import classify
from mailbeacon.enrich.verdict import Signals

CHROME_WIN = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
IPHONE_MAIL = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148"
)

# (label, user agent, client, device, device_model, os)
DEVICES: list[tuple[str, str, str, str, str | None, str | None]] = [
    (
        "outlook on windows",
        "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17029; Pro)",
        "Outlook",
        "desktop",
        None,
        "Windows",
    ),
    (
        "outlook 2013 on windows",
        "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.2; WOW64; Trident/7.0; .NET4.0E; "
        ".NET4.0C; Microsoft Outlook 15.0.5023; ms-office; MSOffice 15)",
        "Outlook",
        "desktop",
        None,
        "Windows",
    ),
    # Outlook's desktop agent that names no OS: Outlook (not Outlook Mobile) is a PC's.
    (
        "outlook ms-office",
        "Mozilla/4.0 (compatible; ms-office; MSOffice 16)",
        "Outlook",
        "desktop",
        None,
        None,
    ),
    (
        "outlook on macos",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Microsoft Outlook/16.80.23121017",
        "Outlook",
        "desktop",
        "Mac",
        "Mac OS X",
    ),
    (
        "apple mail on macos",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
        "Apple Mail",
        "desktop",
        "Mac",
        "Mac OS X",
    ),
    ("ios mail on an iphone", IPHONE_MAIL, "Apple Mail", "mobile", "iPhone", "iOS"),
    (
        "ios mail on an ipad",
        "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148",
        "Apple Mail",
        "tablet",
        "iPad",
        "iOS",
    ),
    # The Gmail app showing a non-Google account's mail loads images in Android's WebView.
    (
        "gmail app on android",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/UQ1A.240205.004; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/121.0.6167.178 Mobile Safari/537.36",
        "Android mail app",
        "mobile",
        "Pixel 8",
        "Android",
    ),
    (
        "mail app in a tablet's webview",
        "Mozilla/5.0 (Linux; Android 13; SM-X710 Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/117.0.0.0 Safari/537.36",
        "Android mail app",
        "tablet",
        "SM-X710",
        "Android",
    ),
    ("outlook for android", "Outlook-Android/2.0", "Outlook Mobile", "mobile", None, "Android"),
    (
        "outlook for ios",
        "Outlook-iOS/709.2226530.prod.iphone (4.2349.0)",
        "Outlook Mobile",
        "mobile",
        "iPhone",
        "iOS",
    ),
    (
        "thunderbird on windows",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Thunderbird/115.5.0",
        "Thunderbird",
        "desktop",
        None,
        "Windows",
    ),
    (
        "thunderbird on linux",
        "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.6.0",
        "Thunderbird",
        "desktop",
        None,
        "Linux",
    ),
    (
        "chrome on an ipad",
        "Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
        "Chrome Mobile iOS",
        "tablet",
        "iPad",
        "iOS",
    ),
    (
        "samsung internet on a galaxy s23",
        "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
        "Samsung Internet",
        "mobile",
        "SM-S918B",
        "Android",
    ),
    (
        "samsung internet on a galaxy tab",
        "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/23.0 Chrome/115.0.0.0 Safari/537.36",
        "Samsung Internet",
        "tablet",
        "SM-X710",
        "Android",
    ),
    (
        "samsung email",
        "Mozilla/5.0 (Linux; Android 13; SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungEmail/6.1.90.16 Chrome/115.0.5790.166 Mobile Safari/537.36",
        "Samsung Email",
        "mobile",
        "SM-A536B",
        "Android",
    ),
    ("k-9 mail", "K-9 Mail for Android", "K-9 Mail", "mobile", None, "Android"),
    (
        "chrome on a pixel",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.6099.144 Mobile Safari/537.36",
        "Chrome Mobile",
        "mobile",
        "Pixel 8",
        "Android",
    ),
    # Chrome's reduced agent sends "K" for every model: the type stays, the model is gone.
    (
        "chrome reduced agent, phone",
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Mobile Safari/537.36",
        "Chrome Mobile",
        "mobile",
        None,
        "Android",
    ),
    (
        "chrome reduced agent, tablet",
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36",
        "Chrome",
        "tablet",
        None,
        "Android",
    ),
    (
        "chrome on a pixel tablet",
        "Mozilla/5.0 (Linux; Android 14; Pixel Tablet) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.6099.144 Safari/537.36",
        "Chrome",
        "tablet",
        "Pixel Tablet",
        "Android",
    ),
    (
        "silk on a kindle fire",
        "Mozilla/5.0 (Linux; Android 11; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Silk/120.3.1 like Chrome/120.0.6099.230 Safari/537.36",
        "Amazon Silk",
        "tablet",
        "Kindle",
        "Android",
    ),
    ("chrome on windows", CHROME_WIN, "Chrome", "desktop", None, "Windows"),
    (
        "safari on macos",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.1 Safari/605.1.15",
        "Safari",
        "desktop",
        "Mac",
        "Mac OS X",
    ),
    (
        "firefox on ubuntu",
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
        "Firefox",
        "desktop",
        None,
        "Ubuntu",
    ),
    (
        "chrome on a chromebook",
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36",
        "Chrome",
        "desktop",
        None,
        "Chrome OS",
    ),
    (
        "spark on macos",
        "Spark/3.12.4 (Macintosh; Intel Mac OS X 14_2)",
        "Spark",
        "desktop",
        "Mac",
        "Mac OS X",
    ),
    (
        "em client on windows",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) eM Client/9.2.2157.0",
        "eM Client",
        "desktop",
        None,
        "Windows",
    ),
]


def test_every_label_is_unique() -> None:
    assert len({d[0] for d in DEVICES}) == len(DEVICES)


@pytest.mark.parametrize(
    ("label", "ua", "client", "device", "model", "os"), DEVICES, ids=[d[0] for d in DEVICES]
)
def test_device_type_and_model(
    label: str, ua: str, client: str, device: str, model: str | None, os: str | None
) -> None:
    agent = classify(ua)
    assert (agent.client, agent.device, agent.device_model, agent.os) == (
        client,
        device,
        model,
        os,
    )


@pytest.mark.parametrize(
    ("label", "ua", "client", "device", "model", "os"), DEVICES, ids=[d[0] for d in DEVICES]
)
def test_a_human_reader_keeps_their_device(
    label: str, ua: str, client: str, device: str, model: str | None, os: str | None
) -> None:
    judged = judge_hit(ua, "81.2.69.160", Signals("open"), Locator())
    assert judged.verdict.name == "human", judged.verdict.reason
    assert (judged.device, judged.device_model) == (device, model)


# (label, user agent, address, kind, method, verdict): readers hidden behind a machine.
HIDDEN = [
    (
        "gmail image proxy",
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
        "66.249.84.12",
        "open",
        "GET",
        "proxy",
    ),
    ("apple privacy prefetch", IPHONE_MAIL, "17.58.63.20", "open", "GET", "prefetch"),
    ("safe links scanner", CHROME_WIN, "40.94.1.20", "click", "GET", "scanner"),
    ("azure open", CHROME_WIN, "13.70.4.5", "open", "GET", "scanner"),
    ("head probe", CHROME_WIN, "81.2.69.160", "click", "HEAD", "scanner"),
    ("python library", "python-requests/2.31.0", "81.2.69.160", "click", "GET", "bot"),
    (
        "headless chrome",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/120.0.6099.71 Safari/537.36",
        "81.2.69.160",
        "click",
        "GET",
        "bot",
    ),
    ("no agent", "", "81.2.69.160", "open", "GET", "bot"),
]


@pytest.mark.parametrize(
    ("label", "ua", "ip", "kind", "method", "verdict"), HIDDEN, ids=[h[0] for h in HIDDEN]
)
def test_a_hidden_reader_has_no_device(
    label: str, ua: str, ip: str, kind: str, method: str, verdict: str
) -> None:
    judged = judge_hit(ua, ip, Signals(kind, method), Locator())
    assert (judged.verdict.name, judged.device, judged.device_model) == (verdict, None, None)
