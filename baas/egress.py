"""Outbound requests that cannot be pointed at the server's own network (SSRF).

Anything that posts to a URL a user or a plugin chose (push endpoints, webhooks) resolves the host name here,
checks every address it resolves to, and then connects to the checked address itself, so a DNS answer that
changes between the check and the connect cannot slip through.
"""
from __future__ import annotations

import ipaddress
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

# getaddrinfo has no timeout of its own and a slow or silent DNS server holds it for tens of seconds; lookups with a
# deadline (a subscribe request, a push delivery) run on these threads, so the caller gives up at its deadline. A
# lookup stuck past it keeps its thread, so at most this many are stuck at once and the rest wait their turn (and
# their deadline) in the queue.
LOOKUP_THREADS = 8
_lookups: ThreadPoolExecutor | None = None
_lookups_lock = threading.Lock()


class TargetRefused(Exception):
    """The host resolves to an address outbound requests may not go to."""


class LookupTimedOut(OSError):
    """The host name did not resolve before the deadline (the DNS server is slow or silent)."""


def _lookup_pool() -> ThreadPoolExecutor:
    global _lookups
    with _lookups_lock:
        if _lookups is None:
            _lookups = ThreadPoolExecutor(LOOKUP_THREADS, thread_name_prefix="baas-dns")
        return _lookups


def is_forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Private, loopback, link-local, shared (CGNAT), reserved, unspecified or multicast: not the public internet."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_forbidden(address.ipv4_mapped)
    return not address.is_global or address.is_multicast or address.is_loopback or address.is_link_local


def parse_networks(networks) -> list:
    return [ipaddress.ip_network(n, strict=False) for n in networks or ()]


def _lookup(host: str, port: int, timeout: float | None) -> list:
    """getaddrinfo of `host`, given up after `timeout` seconds (LookupTimedOut) when there is one."""
    try:
        if timeout is None:
            return socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
        lookup = _lookup_pool().submit(socket.getaddrinfo, host.strip("[]"), port, type=socket.SOCK_STREAM)
        try:
            return lookup.result(timeout)
        except FutureTimeout:
            lookup.cancel()
            raise LookupTimedOut(f"{host} did not resolve within {timeout:g} s") from None
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve {host}: {exc.strerror or exc}") from None


def resolve_public(host: str, port: int, allow_networks=(), timeout: float | None = None) -> list[str]:
    """The addresses of `host` (an IP literal or a name), all checked; the first is the one to connect to.

    Raises TargetRefused when any address is forbidden and in none of `allow_networks` (ip_network objects,
    see parse_networks); OSError when the name does not resolve, LookupTimedOut when `timeout` seconds pass first.
    """
    addresses = []
    for info in _lookup(host, port, timeout):
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if is_forbidden(address) and not any(address in network for network in allow_networks):
            raise TargetRefused(f"{host} resolves to {address}, a private, loopback or link-local address")
        if str(address) not in addresses:
            addresses.append(str(address))
    if not addresses:
        raise OSError(f"cannot resolve {host}: no addresses")
    return addresses


def is_forbidden_literal(host: str) -> bool:
    """True when `host` is an IP literal (IPv6 in brackets or not) outbound requests may not go to; a name is
    judged when it is resolved (resolve_public)."""
    try:
        address = ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return False
    return is_forbidden(address)


def connect_address(host: str, port: int, exempt_hosts=frozenset(), *, timeout: float | None = None) -> str:
    """The checked address to connect to for `host`: the first of resolve_public, or, for a host the operator
    exempted by name (push.allow_http_hosts: tests, on-premise services), the first it resolves to.

    Raises TargetRefused or OSError as resolve_public does, LookupTimedOut (an OSError) when `timeout` seconds
    pass first, for an exempt host too: its DNS server can be as slow as anyone's."""
    if host.lower() in exempt_hosts:
        infos = _lookup(host, port, timeout)
        if not infos:
            raise OSError(f"cannot resolve {host}: no addresses")
        return infos[0][4][0]
    return resolve_public(host, port, timeout=timeout)[0]
