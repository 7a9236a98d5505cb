"""Background work on RQ.

- ``app.core.queue.queues``: queue names (by priority), the kinds of job (timeouts, retries), the one
  enqueue helper, and what operators read (depths, failed jobs);
- ``app.core.queue.lanes``: one lane per tenant in each priority, served round-robin;
- ``workers.worker``: the worker class that takes jobs fairly and runs each in an app context;
- ``workers.maintenance``: retries due, jobs of killed workers recovered;
- ``workers.scheduler``: periodic jobs, declared in one list;
- ``workers.system``, ``workers.mail`` and later modules: the jobs, plain functions taking ids.
"""
