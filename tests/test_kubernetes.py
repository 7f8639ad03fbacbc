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
    project = bake(deployment="kubernetes", use_tracing=True, cache="redis")
    return Deployed(project, install(project, DEFAULT_PYTHON), kustomize(project))


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


def test_probes_point_at_the_apps_liveness_and_readiness_routes(deployed: Deployed) -> None:
    routes = app_facts(
        deployed.python,
        deployed.project,
        "sorted({route.resource.canonical for route in create_app(Settings()).router.routes()"
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


def test_every_environment_name_is_one_the_app_or_its_libraries_read(deployed: Deployed) -> None:
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
        deployed.python, deployed.project, f"Settings.from_env({deployed.settings!r}).port"
    )
    assert port == int(deployed.settings["PORT"])


def test_redis_url_comes_from_a_secret_never_from_the_config_map(deployed: Deployed) -> None:
    (redis_url,) = [env for env in deployed.container["env"] if env["name"] == "REDIS_URL"]
    reference = redis_url["valueFrom"]["secretKeyRef"]

    assert "value" not in redis_url
    assert reference == {"name": "my-async-service-redis", "key": "url"}
    assert not any(name.startswith("REDIS") for name in deployed.settings)
    readme = (deployed.project / "README.md").read_text(encoding="utf-8")
    assert "kubectl create secret generic my-async-service-redis" in readme


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
        assert "emptyDir" in volumes[mount["name"]]


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
