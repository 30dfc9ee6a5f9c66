from baas.testing import *  # noqa: F401,F403  (the bundled plugins test with the fixtures plugin authors use)
