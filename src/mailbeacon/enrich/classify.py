"""One hit in, one judged hit out: agent, network, place and verdict put together.

The pure path the pipeline and the benchmark share. What a proxy or a prefetcher
reveals is the proxy's, not the reader's, so their place, device and OS stay unknown.
A scanner's or a bot's device is no reader's either: only a human verdict keeps the
device type and model (CONTRACT.md: `device` is null when the reader is hidden).
"""

from __future__ import annotations

from dataclasses import dataclass

from mailbeacon.enrich.geo import NOWHERE, Locator, Place
from mailbeacon.enrich.networks import network_of
from mailbeacon.enrich.useragent import classify as classify_agent
from mailbeacon.enrich.verdict import Signals, Verdict, judge


@dataclass(frozen=True, slots=True)
class Judged:
    verdict: Verdict
    client: str | None
    device: str | None
    os: str | None
    place: Place
    device_model: str | None = None


def judge_hit(user_agent: str | None, ip: str | None, signals: Signals, locator: Locator) -> Judged:
    agent = classify_agent(user_agent)
    net = network_of(ip)
    verdict = judge(agent, net, signals)
    if verdict.name == "proxy":
        client = agent.client if agent.kind == "proxy" else (net.operator if net else None)
        return Judged(verdict, client, None, None, NOWHERE)
    if verdict.name == "prefetch":
        return Judged(verdict, "Apple Mail", None, None, NOWHERE)
    place = locator.locate(ip)
    if verdict.name != "human":  # a scanner or a bot: its device is no reader's
        return Judged(verdict, agent.client, None, agent.os, place)
    return Judged(verdict, agent.client, agent.device, agent.os, place, agent.device_model)
