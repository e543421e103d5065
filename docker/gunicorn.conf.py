"""Gunicorn settings for the container, applied by `cytopenia-cds serve --gunicorn-config` over its defaults.

The defaults (cds_service/serving.py) already give one worker per CPU the container may use, each
the whole-request threaded worker (cds_service/worker.py) with four threads, preload, timeouts from
the request deadline and no control socket (gunicorn >= 27 needs a writable
home directory for it; the image's user has none). Bind address, port and worker count come from
CYTOPENIA_HOST / CYTOPENIA_PORT / CYTOPENIA_WORKERS.
"""

preload_app = True
control_socket_disable = True
worker_tmp_dir = "/dev/shm"  # heartbeat files off the (possibly read-only) root filesystem
graceful_timeout = 20  # orchestrators send SIGTERM and wait ~30 s before SIGKILL
keepalive = 5  # behind a load balancer that reuses connections
limit_request_line = 8190
limit_request_fields = 100
forwarded_allow_ips = "127.0.0.1"  # trust X-Forwarded-* only from a sidecar proxy
