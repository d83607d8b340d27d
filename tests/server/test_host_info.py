"""`sys/host-info`: the host's CPUs, CPU times, disks, host and memory in the field names
OpenBao 2.7.2 (gopsutil) gives them; root namespace only; a failed section is a warning."""

from __future__ import annotations

import os

import psutil
import pytest

from tenantvault.observability import _host_info
from tests.server.conftest import Vault

# The keys of each section in OpenBao 2.7.2's answer on this kind of host.
CPU = {
    "cacheSize",
    "coreId",
    "cores",
    "cpu",
    "family",
    "flags",
    "mhz",
    "microcode",
    "model",
    "modelName",
    "physicalId",
    "stepping",
    "vendorId",
}
CPU_TIMES = {
    "cpu",
    "guest",
    "guestNice",
    "idle",
    "iowait",
    "irq",
    "nice",
    "softirq",
    "steal",
    "system",
    "user",
}
DISK = {
    "free",
    "fstype",
    "inodesFree",
    "inodesTotal",
    "inodesUsed",
    "inodesUsedPercent",
    "path",
    "total",
    "used",
    "usedPercent",
}
HOST = {
    "bootTime",
    "hostid",
    "hostname",
    "kernelArch",
    "kernelVersion",
    "os",
    "platform",
    "platformFamily",
    "platformVersion",
    "procs",
    "uptime",
    "virtualizationRole",
    "virtualizationSystem",
}
MEMORY_SOME = {"total", "available", "used", "usedPercent", "free", "cached", "buffers", "shared"}


async def test_root_reads_every_section_in_gopsutils_names(vault: Vault) -> None:
    response = await vault.root("GET", "sys/host-info")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["warnings"] is None
    data = body["data"]
    assert set(data) == {"timestamp", "cpu", "cpu_times", "disk", "host", "memory"}
    assert data["timestamp"].endswith("Z")
    assert len(data["cpu"]) == len(data["cpu_times"]) == os.cpu_count()
    assert all(set(cpu) == CPU for cpu in data["cpu"])
    assert [cpu["cpu"] for cpu in data["cpu"]] == list(range(len(data["cpu"])))
    assert all(set(times) == CPU_TIMES for times in data["cpu_times"])
    assert data["cpu_times"][0]["cpu"] == "cpu0"
    assert data["disk"]
    assert all(set(disk) == DISK for disk in data["disk"])
    assert "/" in {disk["path"] for disk in data["disk"]}
    assert set(data["host"]) == HOST
    assert data["host"]["os"] == "linux"
    assert data["host"]["procs"] > 0
    memory = data["memory"]
    assert MEMORY_SOME <= set(memory)
    assert memory["total"] == psutil.virtual_memory().total
    assert memory["used"] == memory["total"] - memory["available"]
    assert 0 < memory["usedPercent"] < 100


async def test_a_section_that_cannot_be_read_is_a_warning(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreadable() -> object:
        raise PermissionError(13, "Permission denied", "/proc/secret-path")

    monkeypatch.setitem(_host_info._SECTIONS, "cpu", unreadable)
    body = (await vault.root("GET", "sys/host-info")).json()
    assert "cpu" not in body["data"]
    assert {"cpu_times", "disk", "host", "memory"} <= set(body["data"])
    assert body["warnings"] == ["HostInfoError: cpu: PermissionError"]  # no path, no value


async def test_it_needs_read_in_the_root_namespace_and_is_absent_in_a_tenant(
    vault: Vault,
) -> None:
    other = (await vault.create_token(None, ["default"]))["client_token"]
    denied = await vault.request("GET", "sys/host-info", token=other)
    assert (denied.status_code, denied.json()) == (403, {"errors": ["permission denied"]})
    await vault.create_tenant("acme")
    inside = await vault.root("GET", "sys/host-info", namespace="acme")
    assert (inside.status_code, inside.json()) == (404, {"errors": ["unsupported path"]})
