"""Entry point for server worker processes: `baas serve` hands them its resolved config in the environment."""
import faulthandler
import json
import os
import signal

from baas import create_app
from baas.storage.embedded import die_with_parent

RESOLVED_CONFIG_ENV = "BAAS_RESOLVED_CONFIG"
MAIN_PID_ENV = "BAAS_MAIN_PID"


def app_from_env():
    # `kill -USR1 <worker pid>` writes every thread's stack to the server log: the way to see where a worker that
    # does not stop (or does not answer) is stuck, without a debugger on the production machine.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    # A worker outliving its main process would keep the port and the data-folder lock while nothing watches
    # the database: when the main process goes (even by kill -9), the kernel kills its workers. SIGKILL, since
    # no one is left to finish a graceful stop that hangs.
    main_pid = os.environ.get(MAIN_PID_ENV)
    die_with_parent(signal.SIGKILL, int(main_pid) if main_pid else None)
    if main_pid:
        # Out of the terminal's process group: Ctrl-C reaches only the main process, which stops the workers
        # with one SIGTERM each. A worker signalled twice (SIGINT from the terminal, then SIGTERM from the main
        # process) often never finishes granian's shutdown, and the main process would wait for it.
        os.setpgid(0, 0)
    return create_app(json.loads(os.environ[RESOLVED_CONFIG_ENV]))
