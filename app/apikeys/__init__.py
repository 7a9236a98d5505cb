"""Organization API keys: made and revoked by admins in the organization's settings
(``/<org>/settings/api-keys``), used by the API (``app/api``) to know who is calling."""
