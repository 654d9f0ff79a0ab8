"""Scheduled channel digests: config, composition, exactly-once posting and the scheduler.

``channels`` reads config/channels.yaml; ``slots`` turns schedules into periods; ``compose``
builds a digest from the serving snapshot; ``claims`` fences every send in Redis; ``sender``
talks to Slack with retries; ``poster`` ties them into one exactly-once run; ``scheduler``
wires that run into APScheduler for ``churnbot worker`` (with its heartbeat and resume jobs);
``scoring`` is the worker's scheduled scoring run; ``metrics`` the worker's Prometheus metrics;
``upcoming`` shares the next run times with the web process.
"""
