"""Infrastructure every feature stands on: database and tenancy, cache, sessions, queue, mail,
logs, security, storage, and the web basics. Nothing here imports a feature package."""
