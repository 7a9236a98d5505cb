"""Plans and their quotas: what each plan includes (``catalog``), and the check made wherever
something an organization's plan counts is created (``quotas``); the owners' and admins' page
of the plan and its usage (``routes``, its own blueprint: the services import this package)."""

from app.plans.catalog import PLAN_NAMES, PLANS, Plan, plan_named
from app.plans.quotas import QuotaExceeded, api_requests_per_minute, check, plan_of, usage

__all__ = [
    "PLANS",
    "PLAN_NAMES",
    "Plan",
    "QuotaExceeded",
    "api_requests_per_minute",
    "check",
    "plan_named",
    "plan_of",
    "usage",
]
