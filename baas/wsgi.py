"""Entry point for server worker processes: `baas serve` hands them its resolved config in the environment."""
import faulthandler
import json
import os
import signal
import threading

from baas import create_app
from baas.storage.embedded import die_with_parent

RESOLVED_CONFIG_ENV = "BAAS_RESOLVED_CONFIG"
MAIN_PID_ENV = "BAAS_MAIN_PID"


def app_from_env():
    # `kill -USR1 <worker pid>` writes every thread's stack to the server log: the way to see where a worker that
    # does not stop (or does not answer) is stuck, without a debugger on the production machine.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    relay_stop_signals_to_the_main_thread()
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


def relay_stop_signals_to_the_main_thread() -> None:
    """Make sure a SIGTERM or SIGINT reaches granian's handler, whichever thread the kernel gives it to.

    A signal sent to a process goes to any one of its threads that does not block it. Python runs its handler
    later, in the main thread, which notices only when it runs bytecode or is interrupted itself; a granian
    worker's main thread waits on a lock with no timeout until the stop, so a SIGTERM taken by one of the
    runtime's or pymongo's threads (likelier under load) was never acted on: the worker went on serving until
    granian killed it. The signal's C handler writes its number to the wakeup fd from whichever thread took it;
    this relay then interrupts the main thread with SIGUSR2 (a no-op), which makes it run the pending handlers.
    """
    readable, writable = os.pipe()
    os.set_blocking(writable, False)
    signal.set_wakeup_fd(writable, warn_on_full_buffer=False)
    signal.signal(signal.SIGUSR2, lambda *_: None)
    main_thread = threading.main_thread().ident
    stop_signals = {signal.SIGTERM, signal.SIGINT}

    def relay():
        while chunk := os.read(readable, 64):
            if stop_signals.intersection(chunk):
                signal.pthread_kill(main_thread, signal.SIGUSR2)

    threading.Thread(target=relay, name="baas-signal-relay", daemon=True).start()
