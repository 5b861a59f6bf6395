"""The same service on Ray Serve: the same FastAPI app and model, in replicas on a Ray cluster.

Each replica builds the app from the same `ServeSettings` (so it loads the model once, and keys,
limits, back-pressure, response mode, log and metrics behave as with uvicorn); Ray Serve adds
replicas, autoscaling and routing across machines. Deployment options come from a YAML file
(`--ray-config`) and CLI flags (which win):

    num_replicas: 2                     # or autoscaling_config, not both
    autoscaling_config: {min_replicas: 1, max_replicas: 4, target_ongoing_requests: 2}
    max_ongoing_requests: 10            # per replica; default max_inflight + max_queue
    max_queued_requests: 8              # beyond: Ray answers 503; default max_queue
    ray_actor_options: {num_cpus: 1}

Ray is started offline (no dashboard, no usage reporting): nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from facepad.serve.settings import ServeSettings, SettingsError

DEPLOYMENT_KEYS = {
    "num_replicas",
    "autoscaling_config",
    "max_ongoing_requests",
    "max_queued_requests",
    "ray_actor_options",
    "health_check_period_s",
    "graceful_shutdown_timeout_s",
}


def deployment_options(
    settings: ServeSettings,
    config: Path | None = None,
    replicas: int | None = None,
    autoscale_min: int | None = None,
    autoscale_max: int | None = None,
    target_ongoing: float | None = None,
) -> dict[str, Any]:
    """Ray Serve deployment options: defaults from the settings, then the YAML, then the flags."""
    import yaml

    options: dict[str, Any] = {
        "num_replicas": 1,
        "max_ongoing_requests": settings.max_inflight + settings.max_queue,
        "max_queued_requests": settings.max_queue,
        "ray_actor_options": {"num_cpus": 1},
    }
    if config is not None:
        loaded = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
        unknown = set(loaded) - DEPLOYMENT_KEYS
        if not isinstance(loaded, dict) or unknown:
            raise SettingsError(
                f"{config}: unknown keys {sorted(unknown)}; use {sorted(DEPLOYMENT_KEYS)}"
            )
        if "autoscaling_config" in loaded:
            options.pop("num_replicas")
        options.update(loaded)
    if replicas is not None:
        options["num_replicas"] = replicas
        options.pop("autoscaling_config", None)
    scaling = {
        key: value
        for key, value in (
            ("min_replicas", autoscale_min),
            ("max_replicas", autoscale_max),
            ("target_ongoing_requests", target_ongoing),
        )
        if value is not None
    }
    if scaling:
        if replicas is not None:
            raise SettingsError("give --replicas or the --autoscale-* flags, not both")
        options["autoscaling_config"] = {**options.get("autoscaling_config", {}), **scaling}
        options.pop("num_replicas", None)
    if "num_replicas" in options and "autoscaling_config" in options:
        raise SettingsError("num_replicas and autoscaling_config exclude each other")
    return options


def build_application(settings: ServeSettings, options: dict[str, Any]):
    """A Ray Serve application: `options` replicas, each serving `app_from_settings(settings)`."""
    import dataclasses

    from ray import serve

    settings = dataclasses.replace(settings, trust_request_id=True)  # Ray's proxy sets the id

    def make_app():  # runs in each replica: load the model once, build the whole app
        from facepad.serve.app import app_from_settings

        return app_from_settings(settings)

    @serve.ingress(make_app)
    class FacepadService:
        """One replica: one Predictor behind the facepad FastAPI app."""

    return serve.deployment(FacepadService, name="facepad", **options).bind()


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to a cluster, or start a local instance that needs no network. Replicas and actors
    hide mediapipe's log lines as this process does (`facepad --verbose` shows them)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    from facepad.data.faces import VERBOSE_ENV, third_party_logs_shown

    if ray.is_initialized():
        return
    # A cluster started elsewhere does not have this process's environment.
    env = {"env_vars": {VERBOSE_ENV: "1"}} if third_party_logs_shown() else None
    if address:
        ray.init(address=address, logging_level="warning", runtime_env=env)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level="warning",
                 runtime_env=env)  # fmt: skip


def run_ray_serve(settings: ServeSettings, args: argparse.Namespace) -> int:
    """`facepad serve MODEL --ray`: deploy and serve until interrupted."""
    try:
        options = deployment_options(
            settings,
            args.ray_config,
            args.replicas,
            args.autoscale_min,
            args.autoscale_max,
            args.target_ongoing_requests,
        )
    except (SettingsError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import signal
    import threading

    import ray
    from ray import serve

    init_ray(args.ray_address)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # after ray.init, which sets its own
    try:
        serve.start(http_options={"host": args.host, "port": args.port})
        serve.run(build_application(settings, options), name="facepad", route_prefix="/")
        print(
            f"facepad on Ray Serve at http://{args.host}:{args.port}/ with {options}",
            file=sys.stderr,
        )
        stop.wait()  # until SIGTERM or Ctrl-C
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
        ray.shutdown()
    return 0
