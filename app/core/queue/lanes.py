"""Fair queues: one lane per tenant inside each priority, served round-robin.

Redis layout, for each priority ``p`` (``high``, ``default``, ``low``):

- ``rq:queue:p`` is RQ's own list. It is the lane of jobs without a tenant (system jobs),
  and where RQ itself puts jobs back (retries, jobs recovered from a dead worker).
- ``rq:queue:p:t:<tenant>`` is a tenant's lane: the ids of that tenant's pending jobs, in order.
- ``worklane:lanes:p`` is the ring of lanes with pending work (a list), and
  ``worklane:lanes:p:set`` the same lanes as a set, so each lane is in the ring once.

Every dequeue, whichever worker makes it, takes the lane at one end of the ring, moves it
to the other end and pops one job from it. A lane that becomes non-empty joins the ring
at the far end, so its first job is handed out after at most one job of each other lane
of its priority: with ``L`` lanes holding work, a new job waits for at most ``L - 1``
dequeues of other lanes, however many jobs those lanes hold. Priorities stay strict:
a worker takes any ``high`` job before any ``default`` one, whatever the tenant.

Each job hash records its lane (``worklane_lane``). A job put back — a retry, or a job
recovered from a killed worker — has already waited its turn once, so it goes to the
*front* of its own lane (the end a dequeue pops from), ahead of the jobs queued behind
it: RQ puts jobs back through :class:`LaneQueue`, whose push does exactly that. A retry
with a backoff waits out its backoff in RQ's scheduled registry first and then goes to
the front as well. When a dequeue still finds a tenant's job at the head of RQ's own list
(put back by plain RQ code), it moves it to the front of the tenant's lane instead of
serving it there, so retries are fair too.

A dequeue is atomic (one Lua script) and claims the job in the priority's
``StartedJobRegistry`` (``rq:wip:p``) under ``<job id>:<execution id>`` before
returning it. From that moment the job belongs to a registry that expires: if the worker
dies before or while running it, the entry runs out and the maintenance step
(``workers.maintenance``) retries the job or moves it to the failed registry.

The scripts use keys they compute, which is fine on a single Redis (not on Redis Cluster).
"""

from __future__ import annotations

import time

from redis import Redis
from rq import Queue
from rq.registry import StartedJobRegistry

#: Field of the job hash naming the lane the job belongs to.
LANE_FIELD = "worklane_lane"
#: Idle workers block on this list; each enqueue pushes a token (the list is kept short).
WAKE_KEY = "worklane:jobs:wake"
WAKE_TOKENS_KEPT = 100
#: How many retried tenant jobs one dequeue moves back into their lanes at most.
ROUTES_PER_DEQUEUE = 500

RQ_QUEUE_PREFIX = "rq:queue:"


def base_lane(priority: str) -> str:
    """RQ's own list for the priority: system jobs, and retries before they are routed."""
    return f"{RQ_QUEUE_PREFIX}{priority}"


def tenant_lane(priority: str, tenant_id) -> str:
    return f"{RQ_QUEUE_PREFIX}{priority}:t:{tenant_id}"


def lane_for(priority: str, tenant_id) -> str:
    return base_lane(priority) if tenant_id is None else tenant_lane(priority, tenant_id)


def ring_key(priority: str) -> str:
    return f"worklane:lanes:{priority}"


def ring_set_key(priority: str) -> str:
    return f"worklane:lanes:{priority}:set"


def started_registry_key(priority: str) -> str:
    return f"rq:wip:{priority}"


#: Lua: a lane that holds work joins the ring (once), and a token wakes an idle worker.
_JOIN_RING_AND_WAKE = """
local function join_ring_and_wake(lane, ring, ring_set, wake, tokens_kept)
  if redis.call('SADD', ring_set, lane) == 1 then
    redis.call('LPUSH', ring, lane)
  end
  redis.call('LPUSH', wake, '1')
  redis.call('LTRIM', wake, 0, tonumber(tokens_kept) - 1)
end
"""

_PUSH = (
    _JOIN_RING_AND_WAKE
    + """
-- KEYS: job hash, lane, ring, ring set, wake list
-- ARGV: job id, job TTL (-1: none), tokens kept, field, value, field, value, ...
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
local ttl = tonumber(ARGV[2])
if ttl and ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
end
redis.call('RPUSH', KEYS[2], ARGV[1])
join_ring_and_wake(KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[3])
return 1
"""
)

_DEQUEUE = """
-- ARGV: now, claim seconds, execution id, routes per dequeue, lane field, priority, priority, ...
local now = tonumber(ARGV[1])
local claim_seconds = tonumber(ARGV[2])
local execution_id = ARGV[3]
local max_routes = tonumber(ARGV[4])
local lane_field = ARGV[5]
for i = 6, #ARGV do
  local priority = ARGV[i]
  local ring = 'worklane:lanes:' .. priority
  local members = ring .. ':set'
  local base = 'rq:queue:' .. priority
  if redis.call('SADD', members, base) == 1 then
    redis.call('LPUSH', ring, base)
  end
  -- Tenant jobs that RQ put back on its own list go back to the front of their lanes
  -- (pushed last one first, so several put back into one lane keep their order).
  local routed = {}
  for _ = 1, max_routes do
    local head = redis.call('LINDEX', base, 0)
    if not head then break end
    local lane = redis.call('HGET', 'rq:job:' .. head, lane_field)
    if (not lane) or lane == base then break end
    redis.call('LPOP', base)
    routed[#routed + 1] = {lane, head}
  end
  for r = #routed, 1, -1 do
    local lane = routed[r][1]
    redis.call('LPUSH', lane, routed[r][2])
    if redis.call('SADD', members, lane) == 1 then
      redis.call('LPUSH', ring, lane)
    end
  end
  local lanes = redis.call('LLEN', ring)
  for _ = 1, lanes do
    local lane = redis.call('RPOPLPUSH', ring, ring)
    local job_id = redis.call('LPOP', lane)
    if lane ~= base and redis.call('LLEN', lane) == 0 then
      redis.call('LREM', ring, 1, lane)
      redis.call('SREM', members, lane)
    end
    if job_id then
      redis.call('ZADD', 'rq:wip:' .. priority, now + claim_seconds, job_id .. ':' .. execution_id)
      return {priority, job_id, lane}
    end
  end
end
return false
"""

_CONFIRM = """
-- KEYS: started registry; ARGV: member, expiry score
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  return 1
end
return 0
"""

_scripts: dict[str, object] = {}


def _run(connection: Redis, source: str, keys=(), args=()):
    script = _scripts.get(source)
    if script is None:
        script = _scripts[source] = connection.register_script(source)
    return script(keys=list(keys), args=list(args), client=connection)


def _hash_fields(job) -> list:
    fields = []
    for key, value in job.to_dict().items():
        if value is not None:
            fields += [key, value if isinstance(value, bytes | str) else str(value)]
    return fields


def push(connection: Redis, job, lane: str, priority: str) -> bool:
    """Save ``job`` and append it to ``lane``, atomically; False when its id already exists."""
    ttl = job.ttl if job.ttl is not None else -1
    added = _run(
        connection,
        _PUSH,
        keys=[job.key, lane, ring_key(priority), ring_set_key(priority), WAKE_KEY],
        args=[job.id, ttl, WAKE_TOKENS_KEPT, *_hash_fields(job), LANE_FIELD, lane],
    )
    return bool(added)


def dequeue(
    connection: Redis, priorities, execution_id: str, claim_seconds: int
) -> tuple[str, str, str] | None:
    """Take the next job (priority order, then round-robin over lanes) and claim it.

    Returns ``(priority, job id, lane)`` or None when every lane is empty. The claim is the
    job's entry ``<job id>:<execution id>`` in the priority's started registry, expiring
    after ``claim_seconds`` unless the worker confirms it (:func:`confirm_claim`).
    """
    found = _run(
        connection,
        _DEQUEUE,
        args=[time.time(), claim_seconds, execution_id, ROUTES_PER_DEQUEUE, LANE_FIELD, *priorities],
    )
    if not found:
        return None
    priority, job_id, lane = (value.decode() if isinstance(value, bytes) else value for value in found)
    return priority, job_id, lane


def confirm_claim(connection: Redis, priority: str, job_id: str, execution_id: str, seconds: int) -> bool:
    """Extend a claim about to be run; False when it already ran out and the job was handed back."""
    member = f"{job_id}:{execution_id}"
    extended = _run(
        connection, _CONFIRM, keys=[started_registry_key(priority)], args=[member, time.time() + seconds]
    )
    return bool(extended)


def release_claim(connection: Redis, priority: str, job_id: str, execution_id: str) -> None:
    """Drop a claim on a job that will not run (its hash is gone)."""
    connection.zrem(started_registry_key(priority), f"{job_id}:{execution_id}")


def wait_for_work(connection: Redis, seconds: float) -> None:
    """Block until something is enqueued or ``seconds`` pass."""
    connection.blpop([WAKE_KEY], timeout=max(1, round(seconds)))


def wake_workers(connection: Redis, tokens: int = 1) -> None:
    """Tell idle workers to look again (after jobs were put back outside ``push``)."""
    with connection.pipeline() as pipe:
        pipe.lpush(WAKE_KEY, *(["1"] * tokens))
        pipe.ltrim(WAKE_KEY, 0, WAKE_TOKENS_KEPT - 1)
        pipe.execute()


def lanes(connection: Redis, priority: str) -> list[str]:
    """Every lane of the priority that may hold jobs (RQ's own list first)."""
    members = sorted(value.decode() for value in connection.smembers(ring_set_key(priority)))
    base = base_lane(priority)
    return [base, *(lane for lane in members if lane != base)]


_REQUEUE = (
    _JOIN_RING_AND_WAKE
    + """
-- KEYS: lane, ring, ring set, wake list; ARGV: job id, tokens kept
redis.call('RPUSH', KEYS[1], ARGV[1])
join_ring_and_wake(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[2])
return 1
"""
)


def requeue(connection: Redis, job_id: str, lane: str, priority: str) -> None:
    """Append an existing job (its hash already saved) to ``lane`` and wake a worker."""
    _run(
        connection,
        _REQUEUE,
        keys=[lane, ring_key(priority), ring_set_key(priority), WAKE_KEY],
        args=[job_id, WAKE_TOKENS_KEPT],
    )


_PUT_BACK = (
    _JOIN_RING_AND_WAKE
    + """
-- KEYS: job hash, the priority's own list, ring, ring set, wake list
-- ARGV: job id, lane field, tokens kept
local lane = redis.call('HGET', KEYS[1], ARGV[2]) or KEYS[2]
redis.call('LPUSH', lane, ARGV[1])
join_ring_and_wake(lane, KEYS[3], KEYS[4], KEYS[5], ARGV[3])
return 1
"""
)


def put_back(connection, job_id: str, priority: str) -> None:
    """Push a job that ran (or was taken) before to the front of its own lane; wake a worker.

    ``connection`` may be a pipeline: the job hash saved earlier in it names the lane.
    """
    _run(
        connection,
        _PUT_BACK,
        keys=[
            f"rq:job:{job_id}",
            base_lane(priority),
            ring_key(priority),
            ring_set_key(priority),
            WAKE_KEY,
        ],
        args=[job_id, LANE_FIELD, WAKE_TOKENS_KEPT],
    )


class LaneQueue(Queue):
    """The queue RQ puts jobs back through (retries, jobs of a killed worker).

    New jobs are pushed by :func:`push` only; every job RQ pushes here was taken before,
    so it goes to the front of its own lane rather than the back of RQ's list.
    """

    def push_job_id(self, job_id: str, pipeline=None, at_front: bool = False):
        put_back(pipeline if pipeline is not None else self.connection, job_id, self.name)


class LaneStartedJobRegistry(StartedJobRegistry):
    """RQ's started registry, retrying the jobs of killed workers through :class:`LaneQueue`."""

    def get_queue(self):
        return LaneQueue(self.name, connection=self.connection, serializer=self.serializer)
