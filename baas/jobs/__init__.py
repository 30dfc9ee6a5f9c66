"""Plugin jobs on cron/interval triggers, fired once per scheduled time across any number of workers."""


def init_app(app, api) -> None:
    from baas.jobs import api as jobs_api
    from baas.jobs.service import JobService

    svc = app.extensions["baas"]
    svc.extra["jobs"] = JobService(svc)
    api.register_blueprint(jobs_api.blp)


def background_runners(svc) -> list:
    from baas.jobs.service import JobRunner

    jobs = svc.extra.get("jobs")
    return [JobRunner(jobs)] if jobs is not None and svc.hooks.jobs() else []
