"""Notifications: what changed for a person, in their inbox and by email.

The inbox's blueprint lives in ``routes.py``, so importing the services (as the issues and
the account pages do) loads no views.
"""
