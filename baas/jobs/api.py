"""Admin API for plugin jobs: list them, queue a run, read the run history (platform admin token)."""
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from baas.context import services
from baas.schemas import StrictSchema

blp = Blueprint("admin-jobs", __name__, url_prefix="/admin/v1/jobs",
                description="Scheduled plugin jobs and their run history (platform admin token).")


class JobSchema(Schema):
    name = fields.String()
    plugin = fields.String()
    schedule = fields.String(metadata={"example": "cron 0 3 * * *"})
    per_project = fields.Boolean()
    description = fields.String()
    next_fire = fields.Float(allow_none=True, metadata={"description": "Epoch seconds."})


class RunSchema(Schema):
    id = fields.String()
    job = fields.String()
    project_id = fields.String(allow_none=True)
    trigger = fields.String(metadata={"description": "schedule or manual"})
    fire_time = fields.Float(allow_none=True)
    status = fields.String(metadata={"description": "queued, running, ok or error"})
    started = fields.Float(allow_none=True)
    finished = fields.Float(allow_none=True)
    duration = fields.Float(allow_none=True, metadata={"description": "Seconds."})
    error = fields.String(allow_none=True)
    worker = fields.String(allow_none=True)
    attempts = fields.Integer()


class RunRequestSchema(StrictSchema):
    project = fields.String(load_default=None, metadata={"description": "One project; default: every project "
                                                                        "that enabled the job's plugin."})


class HistoryQuerySchema(StrictSchema):
    project = fields.String(load_default=None)
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=200))


def _jobs():
    return services().extra["jobs"]


@blp.route("")
class Jobs(MethodView):
    @blp.response(200, JobSchema(many=True))
    def get(self):
        """List the jobs of the loaded plugins"""
        return _jobs().list()


@blp.route("/<name>/runs")
class Runs(MethodView):
    @blp.arguments(HistoryQuerySchema, location="query")
    @blp.response(200, RunSchema(many=True))
    def get(self, query, name):
        """Run history of a job, newest first"""
        return _jobs().history(name, query["project"], query["limit"])

    @blp.arguments(RunRequestSchema, required=False)
    @blp.response(202, RunSchema(many=True))
    def post(self, body, name):
        """Queue a run now; a worker (or `baas serve` on the embedded default) runs it"""
        return _jobs().request_run(name, (body or {}).get("project"))
