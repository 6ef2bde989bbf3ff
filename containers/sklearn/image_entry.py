"""The scikit-learn image's own entry points, for running the kit inside the image's toolkits.

The image sets ``SAGEMAKER_SERVING_MODULE=sagemaker_sklearn_container.serving:main`` and
``SAGEMAKER_TRAINING_MODULE=sagemaker_sklearn_container.training:main``. That package is
not on PyPI (the image builds it from aws/sagemaker-scikit-learn-container), so this module
makes the same toolkit calls its two entry points make, and nothing more:

- ``serving_main`` is the WSGI app the image's gunicorn serves in single-model mode: it
  imports the user module named by SAGEMAKER_PROGRAM, wraps its functions in
  sagemaker-containers' ``Transformer`` (``transform_fn`` alone, or ``input_fn``/
  ``predict_fn``/``output_fn``), loads the model once, and serves it through
  sagemaker-containers' Flask ``Worker``. (The image's defaults for missing functions are
  scikit-learn-specific; the kit's handler defines every function it uses, so they never run.)
- ``training_main`` runs the user entry point through sagemaker-training's ``entry_point.run``
  with the environment's command-line arguments and variables, as a subprocess. The
  toolkit's ``train`` command calls it (SAGEMAKER_TRAINING_MODULE=image_entry:training_main),
  as the image's does.
- ``serve`` does what sagemaker-containers' ``server.start`` does before gunicorn starts
  (install the user module from SAGEMAKER_SUBMIT_DIRECTORY with pip) and then starts gunicorn
  with the same options, except that it binds 127.0.0.1 instead of 0.0.0.0 behind nginx.

Run only with the container virtualenv's Python (make container-env).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from typing import Any

_app: Any = None


def _user_transformer(module: Any) -> Any:
    from sagemaker_containers.beta.framework import transformer

    functions = {
        name: getattr(module, name, None)
        for name in ("model_fn", "input_fn", "predict_fn", "output_fn", "transform_fn")
    }
    model_fn = functions.pop("model_fn")
    transform_fn = functions.pop("transform_fn")
    if transform_fn is not None:
        if any(functions.values()):
            raise ValueError("transform_fn cannot be combined with input_fn/predict_fn/output_fn")
        return transformer.Transformer(model_fn=model_fn, transform_fn=transform_fn)
    return transformer.Transformer(
        model_fn=model_fn, **{name: fn for name, fn in functions.items() if fn is not None}
    )


def serving_main(environ: dict[str, Any], start_response: Any) -> Any:
    global _app
    if _app is None:
        from sagemaker_containers.beta.framework import env, modules, worker

        serving_env = env.ServingEnv()
        try:
            module = importlib.import_module(serving_env.module_name)
        except ImportError:
            module = modules.import_module(serving_env.module_dir, serving_env.module_name)
        user_transformer = _user_transformer(module)
        user_transformer.initialize()
        _app = worker.Worker(
            transform_fn=user_transformer.transform,
            module_name=serving_env.module_name,
            execution_parameters_fn=getattr(module, "execution_parameters_fn", None),
        )
    return _app(environ, start_response)


def training_main() -> None:
    from sagemaker_training import entry_point, environment, runner

    training_env = environment.Environment()
    entry_point.run(
        uri=training_env.module_dir,
        user_entry_point=training_env.user_entry_point,
        args=training_env.to_cmd_args(),
        env_vars=training_env.to_env_vars(),
        runner_type=runner.ProcessRunnerType,
    )


def serve(port: int) -> int:
    """sagemaker-containers' server.start, bound to 127.0.0.1:port without nginx."""
    from sagemaker_containers import _env, _modules

    serving_env = _env.ServingEnv()
    if serving_env.module_name:
        _modules.import_module(serving_env.module_dir, serving_env.module_name)
    pythonpath = ",".join([*sys.path, _env.code_dir])
    gunicorn = [
        os.path.join(os.path.dirname(sys.executable), "gunicorn"),
        "--timeout", str(serving_env.model_server_timeout),
        "-k", "gevent",
        "--pythonpath", pythonpath,
        "-b", f"127.0.0.1:{port}",
        "--worker-connections", str(1000 * serving_env.model_server_workers),
        "-w", str(serving_env.model_server_workers),
        "--log-level", "info",
        "image_entry:serving_main",
    ]  # fmt: skip
    return subprocess.call(gunicorn)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"] and len(sys.argv) == 3:
        sys.exit(serve(int(sys.argv[2])))
    print("usage: image_entry.py serve PORT", file=sys.stderr)
    sys.exit(64)
