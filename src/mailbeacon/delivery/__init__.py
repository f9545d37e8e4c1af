"""Delivery: store and send composed messages (SMTP), campaigns, and the local outbox.

Entry points for the API, CLI and automation:

- `create_message(db, settings, signer, company_id=, lead_id=, subject=, html=, ...)`
- `send_campaign(...)`, `queue_campaign(...)` (the sender stage sends it durably)
- `start_outbox(host, port, directory)` for `make run`
"""

from mailbeacon.delivery.campaigns import (
    AlreadySent,
    CampaignProgress,
    check_templates,
    send_campaign,
)
from mailbeacon.delivery.forwards import send_forward_copy
from mailbeacon.delivery.messages import (
    CampaignNotFound,
    LeadNotFound,
    Suppressed,
    Tracking,
    create_message,
)
from mailbeacon.delivery.outbox import Outbox, start_outbox
from mailbeacon.delivery.sender import KEEP, queue_campaign, send_under_lease
from mailbeacon.delivery.smtp import (
    DeliveryError,
    PermanentFailure,
    SmtpTransport,
    TemporaryFailure,
    Transport,
)

__all__ = [
    "KEEP",
    "AlreadySent",
    "CampaignNotFound",
    "CampaignProgress",
    "DeliveryError",
    "LeadNotFound",
    "Outbox",
    "PermanentFailure",
    "SmtpTransport",
    "Suppressed",
    "TemporaryFailure",
    "Tracking",
    "Transport",
    "check_templates",
    "create_message",
    "queue_campaign",
    "send_campaign",
    "send_forward_copy",
    "send_under_lease",
    "start_outbox",
]
