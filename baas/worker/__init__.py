"""Background work shared through MongoDB: leases, and the runner behind `baas worker`.

Feature packages that have periodic work (push delivery, plugin jobs, file sweeps) expose
`background_runners(svc) -> list` from their package `__init__`; each runner has a `name`, an `interval`
in seconds and a `run_once(now: float)` method. `baas worker` runs them in production; `baas serve` runs them
itself on the embedded default. Any number of processes may run the same runners: the runners claim their
work with the leases of `baas.worker.lease`, so each piece of work is done by one process at a time.
"""
