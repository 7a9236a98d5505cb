"""The background processes; the jobs themselves live beside their features.

- ``workers.worker``: the worker class that takes jobs fairly and runs each in an app context;
- ``workers.maintenance``: retries due, jobs of killed workers recovered;
- ``workers.scheduler``: enqueues the periodic jobs, once per period;
- ``workers.cli``: the ``flask worker`` and ``flask scheduler`` commands (added by ``wsgi.py``).

The queue itself is the app's (``app.core.queue``: ``@job`` declarations, enqueue, lanes,
tracking, ``registry.JOB_MODULES``); each job is a plain function taking ids, declared with
``@job`` in its feature (``app/imports/jobs.py`` …). ``app`` never imports ``workers``.
The other modules here are old job paths kept for one release.
"""
