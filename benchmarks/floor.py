"""The floor: the least a JSON-over-HTTP service can do (parse the request, answer with no cards).

`python -m benchmarks.floor --port P --workers W` serves it under gunicorn with exactly the options
`cytopenia-cds serve` uses (`cds_service.serving.gunicorn_options` and the same config file), so the
served benchmark compares the service with the floor under the same server settings.
"""

from __future__ import annotations

import argparse

import orjson
from flask import Flask, Response, request

from cds_service.config import Settings

URL = "/cds-services/cytopenia-review"


def floor_app(settings: Settings) -> Flask:
    """The floor carries the same settings as ours: the gunicorn worker reads its read deadline and body cap."""
    app = Flask("floor")
    app.config["SETTINGS"] = settings

    @app.post(URL)
    def parse_only() -> Response:
        orjson.loads(request.get_data())
        return Response(orjson.dumps({"cards": []}), mimetype="application/json")

    @app.get("/readyz")
    def ready() -> Response:
        return Response(b'{"status":"ready"}', mimetype="application/json")

    return app


def main() -> None:
    from cds_service.serving import gunicorn_options, run

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--gunicorn-config")
    args = parser.parse_args()
    settings = Settings(dev=True, port=args.port, workers=args.workers)
    options = gunicorn_options(settings, args.gunicorn_config)
    options.pop("child_exit", None)  # the floor keeps no metrics
    run(floor_app(settings), options)


if __name__ == "__main__":
    main()
