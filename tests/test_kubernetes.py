"""``deployment=kubernetes``: the manifests render with kustomize, every object is valid for the
newest Kubernetes that kubernetes-validate knows, and they agree with the app and the image."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from ci_tools import invalid_kubernetes_objects, kustomize
from conftest import Bake, Install
from matrix import DEFAULT_PYTHON

pytestmark = pytest.mark.xdist_group("kubernetes")


@dataclass
class Deployed:
    project: Path
    python: Path
    objects: list[dict[str, Any]]

    def one(self, kind: str) -> dict[str, Any]:
        (found,) = [item for item in self.objects if item["kind"] == kind]
        return found

    @property
    def pod(self) -> dict[str, Any]:
        pod: dict[str, Any] = self.one("Deployment")["spec"]["template"]
        return pod

    @property
    def container(self) -> dict[str, Any]:
        (container,) = self.pod["spec"]["containers"]
        return container

    @property
    def settings(self) -> dict[str, str]:
        data: dict[str, str] = self.one("ConfigMap")["data"]
        return data


@pytest.fixture(scope="module")
def deployed(bake: Bake, install: Install) -> Deployed:
    # The most settings and secrets: OAuth2's two secrets and Redis's URL.
    project = bake(
        deployment="kubernetes",
        use_tracing=True,
        cache="redis",
        upstream_auth="oauth2_client_credentials",
    )
    return Deployed(project, install(project, DEFAULT_PYTHON), kustomize(project))


SECRET_MOUNT = "/run/secrets/my-async-service"
SECRET_KEYS = {
    "UPSTREAM_CLIENT_ID_FILE": "upstream-client-id",
    "UPSTREAM_CLIENT_SECRET_FILE": "upstream-client-secret",
    "REDIS_URL_FILE": "redis-url",
}


@pytest.fixture(scope="module")
def runnable_settings(
    deployed: Deployed, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The ConfigMap's settings as the pod sees them: the Secret's files (here, stand-ins in a
    tmp folder) and the token URL the README says to set."""
    mounted = tmp_path_factory.mktemp("secrets")
    (mounted / "upstream-client-id").write_text("client\n")
    (mounted / "upstream-client-secret").write_text("secret\n")
    (mounted / "redis-url").write_text("redis://:password@redis:6379/0\n")
    environ = {
        name: value.replace(SECRET_MOUNT, str(mounted)) for name, value in deployed.settings.items()
    }
    return environ | {"UPSTREAM_TOKEN_URL": "https://auth.example.com/oauth/token"}


APP_IMPORTS = (
    "from my_async_service.app import create_app\n"
    "from my_async_service.settings import Settings, is_known_variable\n"
)


def app_facts(python: Path, project: Path, expression: str) -> Any:
    """Evaluate ``expression`` in the baked project's own interpreter (with its app factory
    and settings imported); what it gives, through JSON."""
    result = subprocess.run(
        [python, "-c", f"import json\n{APP_IMPORTS}print(json.dumps({expression}))"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def test_every_rendered_object_is_valid_for_the_newest_kubernetes(deployed: Deployed) -> None:
    assert invalid_kubernetes_objects(deployed.objects) == []
    assert {item["kind"] for item in deployed.objects} == {
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Service",
    }


def test_an_unknown_api_version_or_field_fails_instead_of_warning(deployed: Deployed) -> None:
    hpa = {**deployed.one("HorizontalPodAutoscaler"), "apiVersion": "autoscaling/v9"}
    service = deployed.one("Service")
    typo = {**service, "spec": {**service["spec"], "selecter": service["spec"]["selector"]}}
    assert len(invalid_kubernetes_objects([hpa, typo])) == 2


def test_the_image_is_the_kustomize_images_entry(deployed: Deployed) -> None:
    kustomization = yaml.safe_load(
        (deployed.project / "deploy" / "kubernetes" / "kustomization.yaml").read_text()
    )
    (image,) = kustomization["images"]
    assert deployed.container["image"] == f"{image['newName']}:{image['newTag']}"


def test_ports_agree_with_the_settings_and_the_image(deployed: Deployed) -> None:
    (port,) = deployed.container["ports"]
    dockerfile = (deployed.project / "Dockerfile").read_text()
    assert port["containerPort"] == int(deployed.settings["PORT"])
    assert f"PORT={deployed.settings['PORT']}" in dockerfile
    assert f"EXPOSE {deployed.settings['PORT']}" in dockerfile
    (service_port,) = deployed.one("Service")["spec"]["ports"]
    assert service_port["targetPort"] == port["name"]
    annotations = deployed.pod["metadata"].get("annotations", {})
    assert annotations["prometheus.io/port"] == deployed.settings["PORT"]


def test_probes_point_at_the_apps_liveness_and_readiness_routes(
    deployed: Deployed, runnable_settings: dict[str, str]
) -> None:
    routes = app_facts(
        deployed.python,
        deployed.project,
        f"sorted({{route.resource.canonical for route in"
        f" create_app(Settings.from_env({runnable_settings!r})).router.routes()"
        " if route.resource is not None})",
    )
    liveness = deployed.container["livenessProbe"]["httpGet"]
    readiness = deployed.container["readinessProbe"]["httpGet"]

    assert (liveness["path"], readiness["path"]) == ("/health/live", "/health/ready")
    assert {liveness["path"], readiness["path"]} <= set(routes)
    assert liveness["port"] == readiness["port"] == deployed.container["ports"][0]["name"]


def test_the_grace_period_covers_the_drain_and_the_shutdown(deployed: Deployed) -> None:
    drain = float(deployed.settings["SHUTDOWN_DRAIN_SECONDS"])
    shutdown = float(deployed.settings.get("SHUTDOWN_TIMEOUT", "10"))

    assert drain > 0  # endpoint removal takes seconds to reach every node
    assert deployed.pod["spec"]["terminationGracePeriodSeconds"] > drain + shutdown


def test_every_environment_name_is_one_the_app_or_its_libraries_read(
    deployed: Deployed, runnable_settings: dict[str, str]
) -> None:
    names = set(deployed.settings) | {env["name"] for env in deployed.container.get("env", [])}
    verdicts = app_facts(
        deployed.python,
        deployed.project,
        "{name: is_known_variable(name)"
        f" for name in {sorted(names | {'PROT', 'OTEL_EXPORTER_OTLP_ENDPOINT'})!r}}}",
    )

    assert verdicts.pop("PROT") is False  # the check can say no
    assert verdicts.pop("OTEL_EXPORTER_OTLP_ENDPOINT") is True  # use_tracing=yes
    assert all(verdicts.values()), verdicts
    # Every value the ConfigMap sets is one the app accepts as written there (from_env raises
    # on a bad one, which fails app_facts).
    port = app_facts(
        deployed.python, deployed.project, f"Settings.from_env({runnable_settings!r}).port"
    )
    assert port == int(deployed.settings["PORT"])


def test_secrets_come_as_files_of_a_mounted_secret_never_as_values(
    deployed: Deployed, runnable_settings: dict[str, str]
) -> None:
    mounts = {mount["name"]: mount for mount in deployed.container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in deployed.pod["spec"]["volumes"]}
    pod_security = deployed.pod["spec"]["securityContext"]

    assert mounts["secrets"] == {"name": "secrets", "mountPath": SECRET_MOUNT, "readOnly": True}
    assert volumes["secrets"]["secret"] == {
        "secretName": "my-async-service-secrets",
        "defaultMode": 0o440,  # read-only, for the owner and the pod's group
    }
    assert pod_security["fsGroup"] == pod_security["runAsGroup"]  # the group that may read
    assert "env" not in deployed.container  # no value from anywhere but the ConfigMap
    file_settings = {name: value for name, value in deployed.settings.items() if "_FILE" in name}
    assert file_settings == {name: f"{SECRET_MOUNT}/{key}" for name, key in SECRET_KEYS.items()}
    for name in ("UPSTREAM_CLIENT_ID", "UPSTREAM_CLIENT_SECRET", "REDIS_URL"):
        assert name not in deployed.settings
    assert "Secret" not in {item["kind"] for item in deployed.objects}
    # The settings as the pod reads them start the app: the files are what it needs.
    assert (
        app_facts(
            deployed.python,
            deployed.project,
            f"Settings.from_env({runnable_settings!r}).redis_url.get_secret_value()",
        )
        == "redis://:password@redis:6379/0"
    )
    readme = (deployed.project / "README.md").read_text(encoding="utf-8")
    command = readme[readme.index("kubectl create secret generic my-async-service-secrets") :]
    command = command[: command.index("```")]
    for key in SECRET_KEYS.values():
        assert f"--from-file={key}=" in command


def test_the_pod_runs_as_the_images_user_locked_down(deployed: Deployed) -> None:
    dockerfile = (deployed.project / "Dockerfile").read_text()
    (user, group) = re.search(r"^USER (\d+):(\d+)$", dockerfile, re.M).groups()  # type: ignore[union-attr]
    pod_security = deployed.pod["spec"]["securityContext"]
    container_security = deployed.container["securityContext"]

    assert (pod_security["runAsUser"], pod_security["runAsGroup"]) == (int(user), int(group))
    assert pod_security["runAsNonRoot"] is True
    assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container_security["readOnlyRootFilesystem"] is True
    assert container_security["allowPrivilegeEscalation"] is False
    assert container_security["capabilities"] == {"drop": ["ALL"]}
    # What the app may write goes to an emptyDir (the root filesystem is read-only).
    volumes = {volume["name"]: volume for volume in deployed.pod["spec"]["volumes"]}
    for mount in deployed.container["volumeMounts"]:
        writable = not mount.get("readOnly", False)
        assert "emptyDir" in volumes[mount["name"]] or not writable  # secrets: read-only


def test_resources_and_autoscaling(deployed: Deployed) -> None:
    resources = deployed.container["resources"]
    hpa = deployed.one("HorizontalPodAutoscaler")["spec"]

    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]
    assert hpa["minReplicas"] >= 2
    assert [metric["resource"]["name"] for metric in hpa["metrics"]] == ["cpu"]
    assert hpa["scaleTargetRef"]["name"] == deployed.one("Deployment")["metadata"]["name"]


def test_selectors_match_the_pod_labels(deployed: Deployed) -> None:
    labels = deployed.pod["metadata"]["labels"]
    selectors = [
        deployed.one("Deployment")["spec"]["selector"]["matchLabels"],
        deployed.one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        deployed.one("Service")["spec"]["selector"],
    ]
    for selector in selectors:
        assert selector and selector.items() <= labels.items()
    config_map = deployed.one("ConfigMap")["metadata"]["name"]
    assert deployed.container["envFrom"] == [{"configMapRef": {"name": config_map}}]
