"""Flagger simulator: ConfigMaps and Secrets tracked as Flagger's config tracker does.

Covers:
- the 16-hex checksum against vectors computed with Go's ``json.Marshal`` + SHA-256 (HTML
  escapes, U+2028, control characters, nil data, a Secret's base64 values);
- which references are tracked (volumes, projected sources, env, envFrom, init containers),
  optional ones, the ``flagger.app/config-tracking: disabled`` annotation, registry secrets;
- the primary's pod template naming the ``-primary`` copies;
- against the API server: ``status.trackedConfigs`` after initialisation, the ``-primary``
  copies, and a ConfigMap-only change starting a new revision that is promoted.
"""

from __future__ import annotations

import base64

import kubernetes
import pytest

from sandbox.flagger import FlaggerSimulator, configs
from sandbox.flagger.testing import HookRecorder


def test_checksum_matches_go():
    # vectors printed by Go 1.26: fmt.Sprintf("%x", sha256.Sum256(json.Marshal(data))[:8])
    assert configs.checksum(None) == "74234e98afe7498f"
    assert configs.checksum({}) == "74234e98afe7498f"  # the API omits empty data: Go sees nil
    assert (
        configs.checksum({"b": "<x>&y", "a": "é\u2028\n\t\b\x7f", "config.yaml": "level: debug\n"})
        == "e23256a953aaf7a8"
    )
    secret = {"password": base64.b64encode(b"s3cr3t").decode(), "user": base64.b64encode(b"admin").decode()}
    assert configs.checksum(secret) == "0b66b4a1026df054"
    assert (
        configs.go_json({"b": "<x>&y", "a": "é\u2028\n\t\b\x7f\x01"})
        == '{"a":"é\\u2028\\n\\t\\b\x7f\\u0001","b":"\\u003cx\\u003e\\u0026y"}'
    )


POD_SPEC = {
    "volumes": [
        {"name": "v1", "configMap": {"name": "cm-vol"}},
        {"name": "v2", "secret": {"secretName": "sec-vol"}},
        {
            "name": "v3",
            "projected": {
                "sources": [{"configMap": {"name": "cm-proj"}}, {"secret": {"name": "sec-proj", "optional": True}}]
            },
        },
    ],
    "containers": [
        {
            "name": "app",
            "env": [
                {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm-env", "key": "a"}}},
                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "sec-env", "key": "b"}}},
                {"name": "C", "value": "plain"},
            ],
            "envFrom": [{"configMapRef": {"name": "cm-from"}}, {"secretRef": {"name": "sec-from"}}],
        }
    ],
    "initContainers": [{"name": "init", "envFrom": [{"configMapRef": {"name": "cm-init"}}]}],
}


def test_references_found_where_flagger_looks():
    configmaps, secrets = configs.referenced(POD_SPEC)
    assert configmaps == {"cm-vol": True, "cm-proj": True, "cm-env": True, "cm-from": True, "cm-init": True}
    assert secrets == {"sec-vol": True, "sec-proj": False, "sec-env": True, "sec-from": True}


def test_an_env_source_counts_its_first_reference_only_as_flaggers_switch():
    both = {"configMapKeyRef": {"name": "cm"}, "secretKeyRef": {"name": "sec"}}
    spec = {"containers": [{"name": "app", "env": [{"name": "A", "valueFrom": both}], "envFrom": [both_from()]}]}
    assert configs.referenced(spec) == ({"cm": True, "cm-from": True}, {})
    volume = {"volumes": [{"name": "v", "configMap": {"name": "cm"}, "secret": {"secretName": "sec"}}]}
    assert configs.referenced(volume) == ({"cm": True}, {"sec": True})  # a volume's two are separate ifs


def both_from():
    return {"configMapRef": {"name": "cm-from"}, "secretRef": {"name": "sec-from"}}


def test_tracked_configs_skip_disabled_registry_and_unreadable():
    objects = {
        "cm-vol": {"data": {"k": "v"}},
        "cm-proj": {"metadata": {"annotations": {"flagger.app/config-tracking": "disabled"}}, "data": {"k": "v"}},
        "cm-env": {"data": {"a": "1"}},
        "cm-from": {},
        "cm-init": {"data": {"i": "x"}},
    }
    secrets = {
        "sec-vol": {"type": "Opaque", "data": {"k": "dg=="}},
        "sec-env": {"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "e30="}},
        "sec-from": {"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}},
    }
    tracked = configs.tracked_configs(POD_SPEC, objects.get, secrets.get)
    assert tracked == {
        "configmap/cm-vol": configs.checksum({"k": "v"}),
        "configmap/cm-env": configs.checksum({"a": "1"}),
        "configmap/cm-from": configs.checksum(None),
        "configmap/cm-init": configs.checksum({"i": "x"}),
        "secret/sec-vol": configs.checksum({"k": "dg=="}),
        "secret/sec-from": configs.checksum({"tls.crt": "eA=="}),
    }


def test_primary_template_names_the_primary_copies():
    tracked = {"configmap/cm-vol": "x", "secret/sec-env": "x", "configmap/cm-from": "x", "configmap/cm-init": "x"}
    spec = configs.apply_primary_configs(POD_SPEC, tracked)
    assert spec["volumes"][0]["configMap"]["name"] == "cm-vol-primary"
    assert spec["volumes"][1]["secret"]["secretName"] == "sec-vol"  # not tracked: unchanged
    assert spec["containers"][0]["env"][1]["valueFrom"]["secretKeyRef"]["name"] == "sec-env-primary"
    assert spec["containers"][0]["envFrom"][0]["configMapRef"]["name"] == "cm-from-primary"
    assert spec["initContainers"][0]["envFrom"][0]["configMapRef"]["name"] == "cm-init-primary"
    assert POD_SPEC["volumes"][0]["configMap"]["name"] == "cm-vol"  # a copy


# --- against the API server ------------------------------------------------------------------


@pytest.mark.e2e
def test_config_only_change_starts_a_new_revision(api_client, crds, namespace, kubeconfig):
    core = kubernetes.client.CoreV1Api(api_client)
    apps = kubernetes.client.AppsV1Api(api_client)
    custom = kubernetes.client.CustomObjectsApi(api_client)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "settings"}, "data": {"level": "info"}})
    core.create_namespaced_secret(
        namespace,
        {"metadata": {"name": "creds"}, "type": "Opaque", "data": {"token": base64.b64encode(b"t1").decode()}},
    )
    apps.create_namespaced_deployment(
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "conf"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "conf"}},
                "template": {
                    "metadata": {"labels": {"app": "conf"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "image": "app:1",
                                "envFrom": [{"configMapRef": {"name": "settings"}}],
                                "env": [
                                    {"name": "T", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}
                                ],
                            }
                        ]
                    },
                },
            },
        },
    )

    def canary():
        return custom.get_namespaced_custom_object("flagger.app", "v1beta1", namespace, "canaries", "conf")

    with (
        HookRecorder() as hooks,
        FlaggerSimulator(kubeconfig=kubeconfig, time_scale=0.01, namespaces=[namespace]) as flagger,
    ):
        custom.create_namespaced_custom_object(
            "flagger.app",
            "v1beta1",
            namespace,
            "canaries",
            {
                "apiVersion": "flagger.app/v1beta1",
                "kind": "Canary",
                "metadata": {"name": "conf"},
                "spec": {
                    "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "conf"},
                    "service": {"port": 80},
                    "analysis": {
                        "interval": "10s",
                        "threshold": 2,
                        "stepWeight": 50,
                        "maxWeight": 50,
                        "webhooks": [
                            {"name": "gate", "type": "confirm-rollout", "url": hooks.url + "/gate"},
                            {"name": "pre", "type": "pre-rollout", "url": hooks.url + "/pre"},
                        ],
                    },
                },
            },
        )
        initialized = flagger.wait_for_phase(namespace, "conf", "Initialized", timeout=15)["status"]
        assert initialized["trackedConfigs"] == {
            "configmap/settings": configs.checksum({"level": "info"}),
            "secret/creds": configs.checksum({"token": "dDE="}),
        }
        assert core.read_namespaced_config_map("settings-primary", namespace).data == {"level": "info"}
        assert core.read_namespaced_secret("creds-primary", namespace).data == {"token": "dDE="}
        container = apps.read_namespaced_deployment("conf-primary", namespace).spec.template.spec.containers[0]
        assert container.env_from[0].config_map_ref.name == "settings-primary"
        assert container.env[0].value_from.secret_key_ref.name == "creds-primary"

        core.patch_namespaced_config_map("settings", namespace, {"data": {"level": "debug"}})
        flagger.wait_for_phase(namespace, "conf", "Progressing", timeout=15)
        done = flagger.wait_for_phase(namespace, "conf", "Succeeded", timeout=20)["status"]
        assert done["trackedConfigs"]["configmap/settings"] == configs.checksum({"level": "debug"})
        assert done["lastAppliedSpec"] == initialized["lastAppliedSpec"]  # the template never changed
        assert core.read_namespaced_config_map("settings-primary", namespace).data == {"level": "debug"}
        # the webhook checksum covers trackedConfigs: confirm-rollout still carries the deployed
        # revision's, pre-rollout (after the status sync) the new one's, with the same template
        assert [r.json["checksum"] for r in hooks.calls("gate")] != [r.json["checksum"] for r in hooks.calls("pre")]
        assert canary()["status"]["phase"] == "Succeeded"
