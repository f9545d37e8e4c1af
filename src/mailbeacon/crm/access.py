"""Who may do what: the permission matrix, in one table, checked by one function.

The help article's table: email tracking is on every plan, and its data is for
administrators, company managers and marketing managers. The three sales roles get a
403 on tracking data and settings, but still work their leads and send email.
"""

from __future__ import annotations

from enum import StrEnum


class Plan(StrEnum):
    TRIAL = "trial"
    ESSENTIAL = "essential"
    ADVANCED = "advanced"
    ULTIMATE = "ultimate"


class Role(StrEnum):
    ADMINISTRATOR = "administrator"
    COMPANY_MANAGER = "company_manager"
    MARKETING_MANAGER = "marketing_manager"
    SALES_MANAGER = "sales_manager"
    SALESPERSON = "salesperson"
    JR_SALESPERSON = "jr_salesperson"


class Permission(StrEnum):
    MANAGE_COMPANY = "manage_company"  # users, API keys, plan, privacy settings
    MANAGE_LEADS = "manage_leads"  # create and edit leads and lists
    SEND_EMAIL = "send_email"  # single messages and campaigns
    VIEW_TRACKING = "view_tracking"  # message events, lead activity, reports, dashboards
    MANAGE_TRACKING = "manage_tracking"  # tracking settings and automation rules


_ALL_PLANS = frozenset(Plan)
_TRACKING_ROLES = frozenset({Role.ADMINISTRATOR, Role.COMPANY_MANAGER, Role.MARKETING_MANAGER})
_SALES_ROLES = frozenset({Role.SALES_MANAGER, Role.SALESPERSON, Role.JR_SALESPERSON})

# permission -> (roles that hold it, plans that include it)
MATRIX: dict[Permission, tuple[frozenset[Role], frozenset[Plan]]] = {
    Permission.MANAGE_COMPANY: (
        frozenset({Role.ADMINISTRATOR, Role.COMPANY_MANAGER}),
        _ALL_PLANS,
    ),
    Permission.MANAGE_LEADS: (frozenset(Role), _ALL_PLANS),
    Permission.SEND_EMAIL: (frozenset(Role), _ALL_PLANS),
    Permission.VIEW_TRACKING: (_TRACKING_ROLES, _ALL_PLANS),
    Permission.MANAGE_TRACKING: (_TRACKING_ROLES, _ALL_PLANS),
}


def allowed(role: Role | str, plan: Plan | str, permission: Permission) -> bool:
    """The one decision: may a user with this role, in a company on this plan, do this?"""
    try:
        role, plan = Role(role), Plan(plan)
    except ValueError:
        return False
    roles, plans = MATRIX[permission]
    return role in roles and plan in plans


def sees_only_own_leads(role: Role | str) -> bool:
    """The sales roles (sales manager included) work only the leads they own.

    Issue 13: "Sales roles see only their own leads". The tracking roles see the whole
    company. Every lead query goes through `crm.leads.visible_leads`, which asks this.
    """
    return Role(role) in _SALES_ROLES
