"""With immich.ssh_host, `check` tries each ML URL from the Immich server's own host: the path that matters."""

from __future__ import annotations

import pytest
import yaml

pytestmark = pytest.mark.integration


def test_reachability_is_tested_from_the_immich_host(sandbox):
    ml1, ml2, server = sandbox.hosts
    sandbox.write_inventory(hosts=[ml1, ml2])
    data = yaml.safe_load(sandbox.inventory.read_text())
    # ML URLs on the bed network (the fake on this machine reaches them too); ml3 plays the Immich host.
    for host in (ml1, ml2):
        data["hosts"][host.name]["url"] = f"http://{host.ip}:3003"
    data["immich"].update(ssh_host="127.0.0.1", ssh_port=server.ssh_port, ssh_user="deploy",
                          ssh_key=str(sandbox.bed.client_key))
    sandbox.inventory.write_text(yaml.safe_dump(data, sort_keys=False))

    def from_immich(result: dict) -> dict[str, dict]:
        return {name: next(c for c in host["checks"] if c["name"] == "from immich")
                for name, host in result["hosts"].items()}

    before = from_immich(sandbox.cli_json("check"))
    assert before["ml1"]["status"] == "warn" and "nothing listens yet" in before["ml1"]["detail"]
    sandbox.cli("deploy")
    after = from_immich(sandbox.cli_json("check"))
    assert after["ml1"]["status"] == after["ml2"]["status"] == "pass"
    assert "pong" in after["ml1"]["detail"]
    ml2.partition()  # the Immich host can no longer reach ml2 (nor can we)
    try:
        result = sandbox.cli_json("check", expect=1)
        cut = from_immich(result)
        assert cut["ml2"]["status"] == "fail" and "cannot reach" in cut["ml2"]["detail"]
        assert cut["ml1"]["status"] == "pass"
    finally:
        ml2.heal()
