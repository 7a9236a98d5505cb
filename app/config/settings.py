"""The settings every environment shares, grouped by what they configure; ``BaseConfig``
(app/config/base.py) combines the groups and reads them from the environment."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


class DatabaseSettings:
    """PostgreSQL (or SQLite in development): the primary, its pooler, a replica."""

    SQLALCHEMY_DATABASE_URI: str | None = None
    #: Migrations run as the table owner; the app connects as a role that cannot bypass RLS.
    DATABASE_MIGRATION_URL: str | None = None
    #: Filled in by ``finish`` from the URL (see ``engine_options``).
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    #: PostgreSQL: seconds to wait for a new connection, so a server that does not answer (a host
    #: gone from the network) costs a request a quick 503 instead of a thread held for minutes.
    DATABASE_CONNECT_TIMEOUT = 5
    #: PostgreSQL: seconds a new connection keeps trying while the server refuses it (restarting,
    #: starting up), so a request arriving during a restart waits rather than failing.
    DATABASE_CONNECT_RETRY_SECONDS = 3
    #: PostgreSQL: a pooled connection older than this is replaced before use (firewalls and
    #: proxies drop long-idle connections without telling either side).
    DATABASE_POOL_RECYCLE_SECONDS = 1800
    SQLALCHEMY_RECORD_QUERIES = False
    #: Page views read from this streaming replica when set (app/core/replica.py) …
    DATABASE_REPLICA_URL: str | None = None
    #: … and leave it alone this long in a process after it could not be reached.
    REPLICA_RETRY_SECONDS = 10
    #: ``transaction``: DATABASE_URL reaches PostgreSQL through a pooler in transaction mode
    #: (PgBouncer), where each transaction may run on another server connection, so psycopg
    #: prepares no statement on the server (it would be missing on the next one). None: direct.
    DATABASE_POOLER: str | None = None


class RedisSettings:
    """The two Redis servers (queues and sessions; cache and rate limits) and their clients."""

    #: The queue Redis: RQ queues, sessions, locks (noeviction, AOF). ``REDIS_URL`` is the same URL.
    REDIS_URL: str | None = None
    REDIS_QUEUE_URL: str | None = None
    #: The cache Redis: the cache and rate-limit counters, disposable (may evict).
    REDIS_CACHE_URL: str | None = None
    #: Timeouts (seconds) of the clients a web request uses (app/core/redis_breaker.py): a Redis
    #: that hangs costs a page this long at most, then its circuit breaker fails fast.
    REDIS_CONNECT_TIMEOUT = 0.25
    REDIS_SOCKET_TIMEOUT = 0.4
    #: The same for jobs, in worker processes: a job may block on Redis for a while (waiting on a
    #: list, writing a large value) and has no person waiting on a page.
    JOB_REDIS_CONNECT_TIMEOUT = 5
    JOB_REDIS_SOCKET_TIMEOUT = 30


class SiteSettings:
    """Outgoing mail, the site's address and hosts, operators, metrics, and stored files."""

    # Outgoing mail: SMTP_URL is parsed by parse_smtp_url; None in development drops mail with a warning.
    SMTP_URL: str | None = None
    MAIL_FROM = "Worklane <no-reply@worklane.localhost>"
    #: The site's address: every link in mail is built from it (app.core.mail.public_url), never
    #: from the request's Host, which the client chooses.
    PUBLIC_URL = "http://127.0.0.1:5000"
    #: Whether requests must name a served host (PUBLIC_URL's or one of ALLOWED_HOSTS); a
    #: foreign Host gets 400. The health checks answer any Host (load balancers probe by IP).
    ENFORCE_HOSTS = False
    #: Extra ``host`` or ``host:port`` names served besides PUBLIC_URL's (lower-case).
    ALLOWED_HOSTS: frozenset[str] = frozenset()
    #: Accounts (lower-case emails) that may open the operator console; nobody by default.
    OPERATOR_EMAILS: frozenset[str] = frozenset()
    #: Bearer token of /metrics; without one the endpoint answers 404.
    METRICS_TOKEN: str | None = None
    #: Where the development mail sink stores messages and /dev/mail reads them (default: <instance>/mail).
    DEV_MAIL_DIR: str | None = None
    #: Uploaded imports and exports (app/core/storage.py); shared by every web and worker machine.
    FILE_STORAGE_PATH: str | None = None
    #: The plan a new organization starts on (app/plans/catalog.py: free, team, business).
    DEFAULT_PLAN = "free"


class WebSettings:
    """Serving pages: the cache, compression, body size, static files, proxies and HSTS."""

    # Flask-Caching: one Redis-backed cache; keys are owned by app/core/cache.py. Its backend
    # answers as an empty cache while the cache Redis is unreachable (pages come from the database).
    CACHE_TYPE = "app.core.cache_backend.ForgivingRedisCache"
    CACHE_DEFAULT_TIMEOUT = 300
    CACHE_KEY_PREFIX = "worklane:cache:"

    # Flask-Compress: brotli first, gzip for everyone else.
    COMPRESS_ALGORITHM = ["br", "gzip"]
    COMPRESS_MIN_SIZE = 500
    # Bodies from 24 KB (a board, a list) at brotli 1 / gzip 2: a third to a half of the CPU of
    # the default levels (4 / 6) for one to three points less saved; smaller pages (an issue
    # page of 17 KB) keep the default levels, which keep them above 70% saved (at brotli 1 /
    # gzip 2 an issue page saves 68-69%). Cached pages are gzipped once, when stored, at the
    # default level up to COMPRESS_KEPT_LARGE_SIZE and at gzip 2 from there (gzip 1 finds too
    # few of a board's repeated CSRF slots to splice its token in). See app/core/compression.py.
    COMPRESS_LARGE_SIZE = 24 * 1024
    COMPRESS_KEPT_LARGE_SIZE = 64 * 1024
    COMPRESS_LARGE_BR_LEVEL = 1
    COMPRESS_LARGE_LEVEL = 2
    COMPRESS_MIMETYPES = [
        "text/html",
        "text/css",
        "text/plain",
        "text/csv",
        "application/json",
        "application/javascript",
        "image/svg+xml",
    ]

    # The largest body any page takes: the CSV import's 10 MB file, with room to tell people
    # it is over its own limit (a form error) rather than refuse it here (413).
    MAX_CONTENT_LENGTH = 20 * 1024 * 1024

    # Static files carry a content hash in their URL, so they can be cached "forever".
    SEND_FILE_MAX_AGE_DEFAULT = 3600
    STATIC_IMMUTABLE_MAX_AGE = 31536000

    #: How many proxies in front of the web process set X-Forwarded-For/-Proto (0: none).
    PROXY_COUNT = 0
    HSTS_SECONDS = 0


class SessionSettings:
    """Sessions and their cookies, and the CSRF cookie (app/core/sessions.py)."""

    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session (a visitor's: its cookie)
    #: A visitor's CSRF secret (signed double submit, see app/core/session_cookies.py); never stored
    #: server-side.
    CSRF_COOKIE_NAME = "worklane_csrf"

    # Sessions (app/core/sessions.py): a login is stored in Redis and the cookie holds only its id;
    # a visitor's few values (a flash message) travel in the cookie itself, signed.
    SESSION_KEY_PREFIX = "worklane:session:"
    SESSION_REFRESH_EACH_REQUEST = True
    SESSION_COOKIE_NAME = "worklane_session"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    #: Idle timeout: a session unused this long is gone (its Redis key expires).
    SESSION_IDLE_MINUTES = 12 * 60
    #: Absolute timeout: after this long since login, log in again.
    SESSION_ABSOLUTE_HOURS = 14 * 24
    #: While Redis cannot be read, a page (GET) of a person whose session this process read this
    #: recently is served from that copy, read-only; others get a 503 page (app/core/sessions.py).
    SESSION_OUTAGE_GRACE_SECONDS = 120
    REMEMBER_COOKIE_DURATION = 0  # no "remember me" cookie: the server-side session is the login


class AccountSettings:
    """Rate limits of sign-in and account forms, and how long mailed links work."""

    # Rate limits (Flask-Limiter) are counted in Redis, shared by every web process.
    # While that Redis is unreachable, each process counts in memory (app/core/ratelimits.py).
    RATELIMIT_ENABLED = True
    RATELIMIT_STRATEGY = "moving-window"
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    LOGIN_LIMIT_PER_IP = "20 per 10 minutes"
    #: Tight, per account from one address: a guesser is blocked, the owner elsewhere is not.
    LOGIN_LIMIT_PER_ACCOUNT_AND_IP = "8 per 10 minutes"
    #: Looser, per account from anywhere: guesses spread over many addresses.
    LOGIN_LIMIT_PER_ACCOUNT = "40 per hour"
    #: Codes typed at the sign-in's second step (two-factor): only wrong ones count.
    TWO_FACTOR_LIMIT_PER_IP = "20 per 10 minutes"
    TWO_FACTOR_LIMIT_PER_ACCOUNT = "8 per 10 minutes"
    #: Sign-ins started through an organization's provider, and its answers, from one address (an
    #: office's people arrive together through one address; the provider checks the passwords).
    SSO_LIMIT_PER_IP = "120 per 10 minutes"
    RESET_LIMIT_PER_IP = "10 per hour"
    RESET_LIMIT_PER_ACCOUNT = "3 per hour"
    SIGNUP_LIMIT_PER_IP = "10 per hour"
    #: Sign-ups naming one email address (for a taken address, each mails its owner).
    SIGNUP_LIMIT_PER_ACCOUNT = "3 per hour"
    #: Forms that check the signed-in person's current password (password and email change).
    CURRENT_PASSWORD_LIMIT = "5 per 15 minutes"
    #: Invitation mails (new and resent) one person makes go out, and resends of one invitation.
    INVITATION_LIMIT_PER_USER = "20 per hour"
    INVITATION_LIMIT_PER_ORGANIZATION = "50 per hour"
    INVITATION_RESEND_LIMIT = "3 per hour"
    #: Requests with a key that does not work (unknown, revoked, expired) one address may send.
    API_REFUSED_KEYS_PER_IP = "30 per minute"
    #: How long an Idempotency-Key keeps its first answer.
    API_IDEMPOTENCY_SECONDS = 24 * 3600

    EMAIL_VERIFY_MAX_AGE = 7 * 24 * 3600
    #: Single sign-on: how long a sign-in through an organization's provider lets a member into
    #: an organization that enforces it, before the provider is asked again.
    SSO_SESSION_SECONDS = 24 * 3600
    #: How long the mailed link that joins an existing account to a provider's identity works.
    SSO_LINK_MAX_AGE = 3600
    #: Whether an organization's provider may live on a private, loopback or link-local address.
    #: Production refuses them: the issuer is fetched by the server, and an admin could otherwise
    #: point it at internal services. Development and the tests run a provider on loopback.
    SSO_ALLOW_PRIVATE_ISSUERS = False
    #: DNS servers the domain checks ask ("host" or "host:port"); empty: the system's.
    DNS_NAMESERVERS: tuple[str, ...] = ()
    #: Networks (CIDRs) outbound requests (webhooks) may reach although they are not public
    #: addresses: none in production; the tests' local receiver, a developer's own machine.
    OUTBOUND_ALLOWED_NETWORKS: tuple[str, ...] = ()
    PASSWORD_RESET_MAX_AGE = 3600
    INVITATION_DAYS = 7


class JobSettings:
    """Background work: jobs, their recovery, the outbox, and export files."""

    #: Export files (manual and nightly) are deleted this many days after they were made.
    EXPORT_RETENTION_DAYS = 7
    #: A download link to an export works this long after the page that showed it.
    EXPORT_LINK_HOURS = 24

    # Background work: queue names, job kinds, timeouts and retries live in app/core/queue/queues.py.
    RQ_DEFAULT_JOB_TIMEOUT = 180
    SCHEDULER_TICK_SECONDS = 5
    #: A worker confirms its running job this often; the job counts as abandoned (its worker
    #: was killed) this long after the last confirmation; abandoned jobs are recovered by a
    #: maintenance pass run this often (workers/maintenance.py).
    JOB_HEARTBEAT_SECONDS = 5
    JOB_LOST_AFTER_SECONDS = 15
    JOB_MAINTENANCE_SECONDS = 5
    #: A job still running this long after its timeout (its own alarm could not stop it: a call
    #: that never returns to Python) has its work horse killed by the worker (workers/horse.py).
    JOB_KILL_GRACE_SECONDS = 60
    #: Outgoing mail (app/core/mail_delivery.py): the sweep sends a mail its delivery job has not claimed
    #: this long after it was written (Redis was away at commit, the job was lost)…
    OUTBOX_SWEEP_AFTER_SECONDS = 60
    #: …and retries a mail whose worker claimed it this long ago and died (above any SMTP timeout).
    OUTBOX_LEASE_SECONDS = 300
