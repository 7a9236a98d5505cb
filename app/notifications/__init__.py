"""Notifications: what changed for a person, in their inbox and by email."""
