"""Background work on RQ.

- ``workers.queues``: queue names (by priority) and the one enqueue helper;
- ``workers.worker``: the worker class that runs every job in an app context;
- ``workers.scheduler``: periodic jobs, declared in one list;
- ``workers.system`` and later modules: the jobs, plain functions taking ids.
"""
