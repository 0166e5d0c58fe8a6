"""docker-compose.yml, Dockerfile and .dockerignore, checked without Docker.

What the files promise is compared with what the code and pyproject.toml say,
so renaming an environment variable or bumping a pin breaks a test here
rather than a deployment.  The Qdrant healthcheck command is run for real
with bash against a small HTTP server standing in for Qdrant.
"""

from __future__ import annotations

import http.server
import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
CODE_DIRS = ("search", "ingest")
#: Read only by `search serve` (search/web): the search service's, not the ingest job's.
SERVE_DIR = "search/web"
SEARCH_PORT = 8080
#: Variables the search service does not set: datasets are the ingest's; SONGSEARCH_HOME is the image's.
NOT_FOR_SEARCH = {"SONGSEARCH_DATA", "SONGSEARCH_HOME"}

TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
QDRANT_STORAGE = "/qdrant/storage"
QDRANT_REST_PORT = 6333
QDRANT_GRPC_PORT = 6334
#: Variables the ingest service sets to fixed values; every other one is passed through.
FIXED_IN_COMPOSE = {"QDRANT_URL", "SONGSEARCH_HOME"}


# -- loading --------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), "no services in docker-compose.yml"
    return data


@pytest.fixture(scope="module")
def qdrant(compose) -> dict:
    assert "qdrant" in compose["services"], "no qdrant service"
    return compose["services"]["qdrant"]


@pytest.fixture(scope="module")
def ingest(compose) -> dict:
    assert "ingest" in compose["services"], "no ingest service"
    return compose["services"]["ingest"]


@pytest.fixture(scope="module")
def search_service(compose) -> dict:
    assert "search" in compose["services"], "no search service"
    return compose["services"]["search"]


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def pinned(pyproject: dict, package: str) -> str:
    """The version ``package==X`` is pinned to in [project] dependencies."""
    for requirement in pyproject["project"]["dependencies"]:
        match = re.fullmatch(rf"\s*{re.escape(package)}\s*==\s*([^\s;,]+)\s*", requirement, re.IGNORECASE)
        if match:
            return match.group(1)
    raise AssertionError(f"pyproject.toml does not pin {package}==...")


def environment(service: dict) -> dict[str, str]:
    """A service's environment in mapping form, whichever syntax the file uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {str(k): (None if v is None else str(v)) for k, v in env.items()}


def mounts(service: dict) -> list[dict]:
    """Volumes as {source, target, read_only}, from the short or the long syntax."""
    out = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            out.append({"source": volume.get("source"), "target": volume["target"], "read_only": bool(volume.get("read_only"))})
            continue
        # the source may hold "${VAR:-default}", which can itself contain ':'
        match = re.fullmatch(r"(\$\{[^}]*\}|[^:]+):([^:]+)(?::(\w+))?", volume)
        assert match, f"cannot parse volume {volume!r}"
        source, target, mode = match.groups()
        out.append({"source": source, "target": target, "read_only": mode == "ro"})
    return out


def port_mappings(service: dict) -> list[tuple[str | None, int]]:
    """(host ip, container port) of every published port."""
    out = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            out.append((port.get("host_ip"), int(port["target"])))
            continue
        parts = str(port).split("/")[0].split(":")
        host_ip = parts[0] if len(parts) == 3 else None
        out.append((host_ip, int(parts[-1])))
    return out


def env_vars_read_by_code(directories=CODE_DIRS, excluding: str | None = None) -> set[str]:
    """Every environment variable the packages read: os.environ.get / os.getenv / os.environ[...]
    (outside the directory ``excluding``)."""
    patterns = [
        r"""environ\.get\(\s*["']([A-Za-z_][A-Za-z0-9_]*)["']""",
        r"""getenv\(\s*["']([A-Za-z_][A-Za-z0-9_]*)["']""",
        r"""environ\[\s*["']([A-Za-z_][A-Za-z0-9_]*)["']\s*\](?!\s*=[^=])""",
    ]
    names: set[str] = set()
    for directory in directories:
        for path in sorted((ROOT / directory).rglob("*.py")):
            if excluding and path.is_relative_to(ROOT / excluding):
                continue
            source = path.read_text()
            for pattern in patterns:
                names.update(re.findall(pattern, source))
    return names


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    instructions, pending = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        instructions.append((keyword.upper(), " ".join(args.split())))
        pending = ""
    assert not pending, "Dockerfile ends inside a continued line"
    return instructions


def dockerignore_entries() -> set[str]:
    entries = set()
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            entries.add(line.strip("/"))
    return entries


# -- the qdrant service -----------------------------------------------------


def test_qdrant_image_is_pinned_to_a_release_the_client_accepts(qdrant, pyproject):
    image = qdrant.get("image", "")
    match = re.fullmatch(r"qdrant/qdrant:v(\d+)\.(\d+)\.(\d+)", image)
    assert match, f"qdrant image must be pinned to a release tag like qdrant/qdrant:v1.20.0, got {image!r}"
    server = tuple(int(x) for x in match.groups())
    client = tuple(int(x) for x in pinned(pyproject, "qdrant-client").split(".")[:2])
    # qdrant-client's own check: same major version, minor versions at most one apart
    assert server[0] == client[0] and abs(server[1] - client[1]) <= 1, (
        f"qdrant server {image} and qdrant-client {pinned(pyproject, 'qdrant-client')} are not compatible"
    )


def test_ports_are_published_on_localhost_only(compose, qdrant):
    for name, service in compose["services"].items():
        for host_ip, port in port_mappings(service):
            assert host_ip == "127.0.0.1", f"{name}: port {port} is published on {host_ip or 'all interfaces'}"
    published = {port for _, port in port_mappings(qdrant)}
    assert {QDRANT_REST_PORT, QDRANT_GRPC_PORT} <= published, f"qdrant publishes {sorted(published)}"


def test_qdrant_storage_is_a_declared_named_volume(compose, qdrant):
    declared = set(compose.get("volumes") or {})
    storage = [m for m in mounts(qdrant) if m["target"] == QDRANT_STORAGE]
    assert storage, f"nothing is mounted at {QDRANT_STORAGE}"
    assert storage[0]["source"] in declared, f"{storage[0]['source']!r} is not a named volume declared under volumes:"


def test_qdrant_restarts_and_takes_the_api_key_from_the_environment(qdrant):
    assert qdrant.get("restart") in {"always", "unless-stopped", "on-failure"}, "qdrant has no restart policy"
    key = environment(qdrant).get("QDRANT__SERVICE__API_KEY")
    # empty default: no key set means no authentication, not a compose warning
    assert key is not None and re.fullmatch(r"\$\{QDRANT_API_KEY:?-\}", key), (
        f"QDRANT__SERVICE__API_KEY should be ${{QDRANT_API_KEY:-}}, got {key!r}"
    )


def healthcheck_argv(service: dict) -> list[str]:
    test = (service.get("healthcheck") or {}).get("test")
    assert test, "no healthcheck"
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    kind, *args = test
    assert kind in {"CMD", "CMD-SHELL"}, f"healthcheck test starts with {kind!r}"
    argv = args if kind == "CMD" else ["/bin/sh", "-c", " ".join(args)]
    text = " ".join(argv)
    # compose interpolates the command: only $$ (a literal $) may appear
    assert "$" not in text.replace("$$", ""), f"healthcheck would be interpolated by compose: {text}"
    return [a.replace("$$", "$") for a in argv]


def test_healthcheck_uses_nothing_the_qdrant_image_lacks(qdrant):
    argv = healthcheck_argv(qdrant)
    words = set(re.findall(r"[\w.-]+", " ".join(argv)))
    assert not words & {"curl", "wget", "nc", "python", "python3"}, f"the qdrant image has no {words & {'curl', 'wget', 'nc', 'python', 'python3'}}"
    assert str(QDRANT_REST_PORT) in " ".join(argv), "the healthcheck does not probe the REST port"


class _FakeQdrant(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 - http.server's naming
        ok = self.path in {"/readyz", "/healthz", "/livez"}
        self.send_response(self.status if ok else 404)
        self.end_headers()
        self.wfile.write(b"all shards are ready" if ok else b"not found")

    def log_message(self, *args):
        pass


def _run_healthcheck(argv: list[str], port: int) -> int:
    argv = [re.sub(rf"\b{QDRANT_REST_PORT}\b", str(port), a) for a in argv]
    return subprocess.run(argv, capture_output=True, timeout=20).returncode


@pytest.mark.parametrize("status, healthy", [(200, True), (503, False)])
def test_healthcheck_passes_only_when_qdrant_answers_ready(qdrant, status, healthy):
    if not shutil.which("bash"):
        pytest.skip("bash not found")
    argv = healthcheck_argv(qdrant)
    handler = type("Handler", (_FakeQdrant,), {"status": status})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        code = _run_healthcheck(argv, server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
    assert (code == 0) == healthy, f"healthcheck exited {code} for a server answering {status}"


def test_healthcheck_fails_when_nothing_listens(qdrant):
    if not shutil.which("bash"):
        pytest.skip("bash not found")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free_port = sock.getsockname()[1]
    assert _run_healthcheck(healthcheck_argv(qdrant), free_port) != 0


# -- the ingest service -----------------------------------------------------


def test_ingest_is_an_opt_in_profile_that_waits_for_a_healthy_qdrant(ingest, qdrant):
    assert "ingest" in (ingest.get("profiles") or []), "ingest must sit in the 'ingest' profile"
    assert not qdrant.get("profiles"), "qdrant must start with a plain `docker compose up`"
    depends = ingest.get("depends_on")
    assert isinstance(depends, dict) and depends.get("qdrant", {}).get("condition") == "service_healthy", (
        f"ingest must depend on qdrant with condition service_healthy, got {depends!r}"
    )
    build = ingest.get("build")
    context = build.get("context") if isinstance(build, dict) else build
    assert context in {".", "./"}, f"ingest is not built from the repository: {build!r}"


def test_ingest_runs_the_ingest_console_script(ingest, pyproject):
    scripts = pyproject["project"]["scripts"]
    entry = ingest.get("entrypoint") or ingest.get("command")
    argv = shlex.split(entry) if isinstance(entry, str) else list(entry or [])
    assert argv and argv[0] == "ingest" and "ingest" in scripts, f"ingest service runs {argv!r}"


def test_ingest_environment_is_exactly_what_the_code_reads(ingest):
    read = env_vars_read_by_code(excluding=SERVE_DIR)
    contract = (ROOT / "search" / "contract.py").read_text()
    assert read and any(name in contract for name in read), "found no environment variable read by the code"
    assert set(environment(ingest)) == read, (
        f"compose sets {sorted(environment(ingest))}, the code reads {sorted(read)}"
    )


def test_passed_through_variables_keep_the_code_defaults_when_unset(ingest):
    for name, value in environment(ingest).items():
        if name in FIXED_IN_COMPOSE:
            continue
        # ${NAME:-} : the host's variable of the same name, empty (= the code's default) when unset
        assert value is not None and re.fullmatch(rf"\$\{{{name}:?-\}}", value), (
            f"{name} should be passed through as ${{{name}:-}}, got {value!r}"
        )


def test_qdrant_url_points_at_the_qdrant_service(compose, ingest, qdrant):
    url = urlsplit(environment(ingest).get("QDRANT_URL") or "")
    assert url.scheme == "http", f"QDRANT_URL scheme {url.scheme!r}"
    assert url.hostname in compose["services"] and url.hostname == "qdrant", f"QDRANT_URL host {url.hostname!r}"
    assert url.port == QDRANT_REST_PORT, f"QDRANT_URL port {url.port}"


def test_ingest_uses_the_same_api_key_as_the_server(ingest, qdrant):
    assert environment(ingest).get("QDRANT_API_KEY") == environment(qdrant).get("QDRANT__SERVICE__API_KEY")


def test_songsearch_home_lives_on_a_named_volume(compose, ingest):
    home = environment(ingest).get("SONGSEARCH_HOME")
    assert home and home.startswith("/"), f"SONGSEARCH_HOME should be an absolute path, got {home!r}"
    at_home = [m for m in mounts(ingest) if m["target"] == home]
    assert at_home and at_home[0]["source"] in set(compose.get("volumes") or {}), (
        f"{home} is not on a declared named volume"
    )


def test_dataset_bind_mounts_are_read_only(ingest):
    named = {m["source"] for m in mounts(ingest) if re.fullmatch(r"[\w-]+", m["source"] or "")}
    for mount in mounts(ingest):
        if mount["source"] not in named:
            assert mount["read_only"], f"bind mount {mount['source']} -> {mount['target']} is writable"


def test_compose_cli_accepts_the_file():
    """`docker compose config` where a compose CLI exists (it needs no Docker engine)."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        cli = ["docker", "compose"]
    elif shutil.which("docker-compose"):
        cli = ["docker-compose"]
    else:
        pytest.skip("no docker compose CLI")
    for profile in ("ingest", "cluster"):
        result = subprocess.run(
            [*cli, "-f", str(COMPOSE_FILE), "--profile", profile, "config", "-q"],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
        )
        assert result.returncode == 0, result.stderr


# -- the cluster profile -----------------------------------------------------

CLUSTER_NODES = ("qdrant-node1", "qdrant-node2", "qdrant-node3")
QDRANT_P2P_PORT = 6335


def cluster_service(compose, name) -> dict:
    assert name in compose["services"], f"no {name} service"
    service = compose["services"][name]
    assert "cluster" in (service.get("profiles") or []), f"{name} must sit in the 'cluster' profile"
    return service


def command_flags(service: dict) -> dict[str, str]:
    command = service.get("command")
    argv = shlex.split(command) if isinstance(command, str) else list(command or [])
    assert argv and argv[0] in {"./qdrant", "/qdrant/qdrant"}, f"a cluster node runs {argv!r}"
    return dict(zip(argv[1::2], argv[2::2]))


def test_cluster_nodes_run_the_pinned_image_in_cluster_mode(compose, qdrant):
    for name in CLUSTER_NODES:
        node = cluster_service(compose, name)
        assert node.get("image") == qdrant["image"], f"{name} runs {node.get('image')}, the server {qdrant['image']}"
        assert environment(node).get("QDRANT__CLUSTER__ENABLED") == "true"
        assert environment(node).get("QDRANT__SERVICE__API_KEY") == environment(qdrant)["QDRANT__SERVICE__API_KEY"]
        assert node.get("restart") == qdrant.get("restart") and node.get("healthcheck") == qdrant.get("healthcheck")


def test_one_bootstrap_peer_and_the_others_join_it(compose):
    peer = f"http://{CLUSTER_NODES[0]}:{QDRANT_P2P_PORT}"
    first = command_flags(cluster_service(compose, CLUSTER_NODES[0]))
    assert first == {"--uri": peer}, f"{CLUSTER_NODES[0]} must announce itself and bootstrap from nobody: {first}"
    for name in CLUSTER_NODES[1:]:
        node = cluster_service(compose, name)
        assert command_flags(node) == {"--bootstrap": peer, "--uri": f"http://{name}:{QDRANT_P2P_PORT}"}
        assert node.get("depends_on", {}).get(CLUSTER_NODES[0], {}).get("condition") == "service_healthy"


def test_each_cluster_node_keeps_its_storage_on_its_own_named_volume(compose):
    declared = set(compose.get("volumes") or {})
    sources = []
    for name in CLUSTER_NODES:
        storage = [m["source"] for m in mounts(cluster_service(compose, name)) if m["target"] == QDRANT_STORAGE]
        assert storage and storage[0] in declared, f"{name}: {QDRANT_STORAGE} is not on a declared named volume"
        sources.append(storage[0])
    assert len(set(sources)) == len(sources) and not set(sources) & {m["source"] for m in mounts(compose["services"]["qdrant"])}


def test_published_host_ports_do_not_collide(compose):
    """The single server, the cluster and both search services can run side by side."""
    host_ports = []
    for service in compose["services"].values():
        for port in service.get("ports") or []:
            host_ports.append(str(port).split(":")[1] if str(port).count(":") == 2 else str(port))
    assert len(host_ports) == len(set(host_ports)), f"host ports published twice: {sorted(host_ports)}"


@pytest.mark.parametrize("name, default", [("ingest-cluster", "ingest"), ("search-cluster", "search")])
def test_ingest_and_search_reach_the_cluster_through_qdrant_url(compose, name, default):
    service, single = cluster_service(compose, name), compose["services"][default]
    env = environment(service)
    url = urlsplit(env.get("QDRANT_URL") or "")
    assert (url.scheme, url.hostname, url.port) == ("http", CLUSTER_NODES[0], QDRANT_REST_PORT)
    assert {k: v for k, v in env.items() if k != "QDRANT_URL"} == {k: v for k, v in environment(single).items() if k != "QDRANT_URL"}
    assert service.get("entrypoint") == single.get("entrypoint") and service.get("build") == single.get("build")
    assert {n: d.get("condition") for n, d in service.get("depends_on", {}).items()} == dict.fromkeys(CLUSTER_NODES, "service_healthy")


def test_the_cluster_ingest_has_its_own_home(compose, ingest):
    """ingest prunes the model files of versions its Qdrant does not hold: one home per Qdrant."""
    home = environment(ingest)["SONGSEARCH_HOME"]
    volume_at_home = {name: [m["source"] for m in mounts(compose["services"][name]) if m["target"] == home] for name in ("ingest", "ingest-cluster")}
    assert volume_at_home["ingest-cluster"] and volume_at_home["ingest-cluster"] != volume_at_home["ingest"]
    assert volume_at_home["ingest-cluster"][0] in set(compose.get("volumes") or {})
    assert [m for m in mounts(compose["services"]["ingest-cluster"]) if m["target"] != home] == [m for m in mounts(ingest) if m["target"] != home]


# -- Dockerfile and .dockerignore ----------------------------------------


def test_dockerfile_base_image_satisfies_requires_python(pyproject):
    bases = [args for keyword, args in dockerfile_instructions() if keyword == "FROM"]
    assert bases, "Dockerfile has no FROM"
    match = re.fullmatch(r"python:(\d+)\.(\d+)(?:\.\d+)?-slim(?:-\w+)?(?: AS \w+)?", bases[-1], re.IGNORECASE)
    assert match, f"final stage should be python:3.X-slim, got {bases[-1]!r}"
    floor = re.search(r">=\s*(\d+)\.(\d+)", pyproject["project"]["requires-python"])
    assert tuple(map(int, match.groups())) >= tuple(map(int, floor.groups()))


def test_dockerfile_installs_the_pinned_torch_cpu_build_first(pyproject):
    runs = [args for keyword, args in dockerfile_instructions() if keyword == "RUN"]
    torch_runs = [i for i, args in enumerate(runs) if re.search(r"\btorch==", args)]
    assert len(torch_runs) == 1, f"expected one RUN installing torch==..., found {len(torch_runs)}"
    argv = shlex.split(runs[torch_runs[0]])
    indexes = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--index-url"]
    indexes += [a.split("=", 1)[1] for a in argv if a.startswith("--index-url=")]
    assert indexes == [TORCH_CPU_INDEX], f"torch must come from {TORCH_CPU_INDEX} alone, got --index-url {indexes}"
    assert not any(a.startswith("--extra-index-url") for a in argv), "an extra index lets pip take PyPI's CUDA torch"
    versions = [a.split("==", 1)[1] for a in argv if a.startswith("torch==")]
    assert versions == [pinned(pyproject, "torch")], (
        f"Dockerfile installs torch {versions}, pyproject.toml pins {pinned(pyproject, 'torch')}"
    )
    project_installs = [
        i for i, args in enumerate(runs)
        if "install" in shlex.split(args) and {".", "./", "/src", "/src/"} & set(shlex.split(args))
    ]
    assert project_installs, "no RUN installs the project (pip install .)"
    assert torch_runs[0] < project_installs[0], "torch must be installed before the project"


def test_dockerfile_is_offline_for_hugging_face_and_runs_the_console_scripts(pyproject):
    instructions = dockerfile_instructions()
    env = {}
    for keyword, args in instructions:
        if keyword == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(args) if "=" in item)
    assert env.get("HF_HUB_OFFLINE") == "1", "HF_HUB_OFFLINE=1 is not set"
    scripts = pyproject["project"]["scripts"]
    for keyword, args in instructions:
        if keyword in {"CMD", "ENTRYPOINT"}:
            argv = json.loads(args)
            assert argv[0] in scripts, f"{keyword} runs {argv[0]!r}, not one of the console scripts {sorted(scripts)}"


def test_dockerfile_copies_the_packages_and_nothing_dockerignored(pyproject):
    ignored = dockerignore_entries()
    sources = []
    for keyword, args in dockerfile_instructions():
        if keyword in {"COPY", "ADD"} and "--from" not in args:
            sources += [s.rstrip("/") for s in shlex.split(args)[:-1] if not s.startswith("--")]
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
        assert source.removeprefix("./") not in ignored, f"COPY {source}, but .dockerignore drops it"
    packages = {p.rstrip("*").rstrip(".") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = {s.removeprefix("./") for s in sources}
    assert packages | {"pyproject.toml"} <= copied, f"the image gets {sorted(copied)}, the project needs {sorted(packages)}"


def test_dockerignore_keeps_venv_git_and_datasets_out(ingest):
    ignored = dockerignore_entries()
    assert {".venv", ".git"} <= ignored
    # the compose default for a local dataset directory must not end up in the build context
    for mount in mounts(ingest):
        default = re.fullmatch(r"\$\{\w+:?-\.?/?([\w.-]+)\}", mount["source"] or "")
        if default:
            assert default.group(1) in ignored, f"{default.group(1)} (a dataset directory) is sent to docker build"


# -- the search service (`search serve`) ---------------------------------------


def test_search_serves_the_qdrant_collections_once_qdrant_is_healthy(search_service, pyproject):
    build = search_service.get("build")
    assert (build.get("context") if isinstance(build, dict) else build) in {".", "./"}
    assert search_service.get("depends_on", {}).get("qdrant", {}).get("condition") == "service_healthy"
    assert search_service.get("restart") in {"always", "unless-stopped", "on-failure"}
    entry = search_service.get("entrypoint") or search_service.get("command")
    argv = shlex.split(entry) if isinstance(entry, str) else list(entry)
    assert argv[:2] == ["search", "serve"] and "search" in pyproject["project"]["scripts"], argv
    port = int(argv[argv.index("--port") + 1]) if "--port" in argv else SEARCH_PORT
    # inside the container it listens on every interface; the host publishes it on 127.0.0.1 only
    assert port_mappings(search_service) == [("127.0.0.1", port)]
    assert urlsplit(environment(search_service)["QDRANT_URL"]).hostname == "qdrant"


def test_search_environment_is_what_the_code_reads(search_service, qdrant):
    env = environment(search_service)
    assert set(env) == env_vars_read_by_code() - NOT_FOR_SEARCH, f"compose sets {sorted(env)}"
    assert env["QDRANT_API_KEY"] == environment(qdrant).get("QDRANT__SERVICE__API_KEY")
    for name, value in env.items():
        if name not in FIXED_IN_COMPOSE:
            assert re.fullmatch(rf"\$\{{{name}:?-\}}", value or ""), f"{name} should be passed through as ${{{name}:-}}, got {value!r}"


class _FakeSearch(http.server.BaseHTTPRequestHandler):
    status, key = 200, ""

    def do_GET(self):  # noqa: N802 - http.server's naming
        ok = self.path == "/health" and self.headers.get("X-API-Key", "") == self.key
        self.send_response(self.status if ok else 401)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("status, key, healthy", [(200, "", True), (200, "k3y", True), (503, "", False)])
def test_search_healthcheck_passes_only_when_health_answers(search_service, monkeypatch, status, key, healthy):
    argv = healthcheck_argv(search_service)
    assert argv[0] in {"python", "python3"}, "the search image has python, not curl"
    handler = type("Handler", (_FakeSearch,), {"status": status, "key": key})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("SONGSEARCH_API_KEY", key)
    try:
        argv = [sys.executable] + [re.sub(rf"\b{SEARCH_PORT}\b", str(server.server_address[1]), a) for a in argv[1:]]
        code = subprocess.run(argv, capture_output=True, timeout=20).returncode
    finally:
        server.shutdown()
        server.server_close()
    assert (code == 0) == healthy
