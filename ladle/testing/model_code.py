"""Source of small MLflow models-from-code that tests register (mlflow's `python_model` as a
file): a chat model that streams slowly and records each chunk it makes, and a model that
cannot load. Plain strings: nothing runs at import time."""

from __future__ import annotations

STREAMING_PYFUNC_CODE = '''
import os
import time

import mlflow
from mlflow.pyfunc import PythonModel


def _said(model_input):
    """The last message's content of a chat request (a dict or a one-row frame)."""
    try:
        given = model_input.to_dict("records")[0] if hasattr(model_input, "to_dict") else model_input
        return str(list(given["messages"])[-1]["content"])
    except Exception:
        return repr(model_input)[:200]


class Streamer(PythonModel):
    """Answers predict with one message and predict_stream with N chat chunks, slowly; each
    chunk produced is recorded in the file LADLE_TEST_MARKER names (so a test can see
    generation stop)."""

    def predict(self, context, model_input, params=None):
        print(f"streamer predict: {_said(model_input)}", flush=True)  # a line in the runtime log
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": "unary"}}]}

    def predict_stream(self, context, model_input, params=None):
        given = model_input if isinstance(model_input, dict) else {}
        n = int(given.get("max_tokens") or (params or {}).get("max_tokens") or 5)
        marker = os.environ.get("LADLE_TEST_MARKER")
        for i in range(n):
            if marker:
                with open(marker, "a") as f:
                    f.write(f"{i}\\n")
            yield {"object": "chat.completion.chunk", "model": "streamer",
                   "choices": [{"index": 0, "delta": {"content": f"tok{i} "}, "finish_reason": None}]}
            time.sleep(0.15)


mlflow.models.set_model(Streamer())
'''


def broken_model_code(message: str) -> str:
    """A model whose load_context raises RuntimeError(message)."""
    return f'''
import mlflow
from mlflow.pyfunc import PythonModel


class Broken(PythonModel):
    def load_context(self, context):
        raise RuntimeError("{message}")

    def predict(self, context, model_input, params=None):
        return model_input


mlflow.models.set_model(Broken())
'''


HOSTILE_MODEL_CODE = '''
import json
import os
import socket
import tempfile
import urllib.error
import urllib.request

import mlflow
from mlflow.pyfunc import PythonModel


def _read(path, n=4096):
    try:
        with open(path, "rb") as f:
            return "READ:" + f.read(n).decode("latin-1")
    except Exception as e:
        return "ERR:" + type(e).__name__


def _http(url, timeout=3.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return f"{r.status}:" + r.read(2048).decode("latin-1")
    except urllib.error.HTTPError as e:
        return f"{e.code}:" + e.read(512).decode("latin-1")
    except Exception as e:
        return "ERR:" + type(e).__name__


def _loopback_listeners():
    """Ports listening on loopback or every address, from /proc/net/tcp{,6}."""
    ports = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(name).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, port = local.split(":")
            if state == "0A" and addr.strip("0") in ("", "1", "100007F", "1000000"):
                ports.add(int(port, 16))
    return sorted(ports)


class Hostile(PythonModel):
    """Tries every way out of its replica it knows and answers what it found (JSON); also
    does ordinary work: reads its artifact, writes its temp dir, calls a URL it is given."""

    def load_context(self, context):
        self.artifact_path = context.artifacts["greeting"]

    def predict(self, context, model_input, params=None):
        args = json.loads(model_input["args"].iloc[0])
        home = args["home"]
        found = {"uid": os.getuid(), "env": dict(os.environ)}
        files = {os.path.join(home, x): None for x in ("admin-token", "secrets.key", "ladle.db",
                                                       "mlflow/mlflow.db", "foundation-models.json")}
        for root, _dirs, names in os.walk(home):
            for n in names:
                files[os.path.join(root, n)] = None
        found["files"] = {p: _read(p) for p in list(files) + args.get("paths", [])}
        try:
            found["home_listing"] = os.listdir(home)
        except Exception as e:
            found["home_listing"] = "ERR:" + type(e).__name__
        found["proc"] = {pid: {"environ": _read(f"/proc/{pid}/environ", 1 << 16),
                               "cmdline": _read(f"/proc/{pid}/cmdline", 1 << 12)}
                         for pid in os.listdir("/proc") if pid.isdigit() and int(pid) != os.getpid()}
        found["ports"] = {str(p): _http(f"http://127.0.0.1:{p}/api/2.0/mlflow/experiments/search?max_results=5")
                          for p in _loopback_listeners()}
        socks = {}
        for line in open("/proc/net/unix").read().splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 8 and parts[7].startswith("/"):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(1.0)
                try:
                    s.connect(parts[7])
                    socks[parts[7]] = "CONNECTED"
                except Exception as e:
                    socks[parts[7]] = "ERR:" + type(e).__name__
                finally:
                    s.close()
        found["sockets"] = socks
        with open(self.artifact_path) as f:
            found["artifact"] = f.read()
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write("scratch " + args["nonce"])
        found["tmp_file"] = f.name
        found["tmp_read"] = _read(f.name)
        found["outbound"] = _http(args["outbound"])
        return [json.dumps(found)]


mlflow.models.set_model(Hostile())
'''


# A ResponsesAgent that uses MLflow Tracing: one `lookup` span of its own (inside the span
# MLflow opens for predict), and a line on stdout (the replica's log).
TRACED_AGENT_CODE = '''
import mlflow
from mlflow.pyfunc import ResponsesAgent
from mlflow.types.responses import ResponsesAgentResponse


class Agent(ResponsesAgent):
    def predict(self, request):
        with mlflow.start_span("lookup", span_type="TOOL") as span:
            span.set_inputs({"q": "weather"})
            print("agent looked up the weather", flush=True)
            span.set_outputs("sunny")
        return ResponsesAgentResponse(output=[self.create_text_output_item(text="it is sunny", id="msg_1")])


mlflow.models.set_model(Agent())
'''
