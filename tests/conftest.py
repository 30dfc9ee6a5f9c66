from baas.testing import *  # noqa: F401,F403  (fixtures: servers, app, client, admin, project, ...)
