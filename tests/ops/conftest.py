from baas.testing import *  # noqa: F401,F403
