"""Download a registered model's artifacts: `python -m ladle.entities.fetch URI DEST`.

Runs as a build step in its own process (MLflow is heavy; the server stays lean), with
MLFLOW_TRACKING_URI in its environment and, with `--token-stdin`, the registry's token as
the first line of stdin (not in its environment, which a same-uid process could read; the
process is made non-dumpable first). Prints progress lines.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile


def main() -> None:
    uri, dest = sys.argv[1], sys.argv[2]
    if "--token-stdin" in sys.argv[3:]:
        from ladle.support.child_env import set_non_dumpable

        set_non_dumpable()
        os.environ["MLFLOW_TRACKING_TOKEN"] = sys.stdin.readline().strip()
    import mlflow.artifacts

    print(f"Downloading artifacts of {uri} from {os.environ.get('MLFLOW_TRACKING_URI')}", flush=True)
    parent = os.path.dirname(dest)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=".fetch-")
    try:
        local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp)
        if not os.path.exists(os.path.join(local, "MLmodel")):
            print(f"ERROR: {uri} has no MLmodel file: it is not an MLflow model", flush=True)
            sys.exit(2)
        n = sum(len(f) for _, _, f in os.walk(local))
        os.replace(local, dest)
        print(f"Downloaded {n} files to {dest}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # Done: skip the interpreter's teardown of MLflow's modules (seconds on a busy machine)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
