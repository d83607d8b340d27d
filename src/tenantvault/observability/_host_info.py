"""`GET sys/host-info` (Vault's): the host's CPUs, CPU times, disks, host and memory, in the
field names Vault's gopsutil gives them (camelCase inside each section).

psutil reads the counters (CPU times, boot time, processes, partitions and their usage);
what it does not expose in gopsutil's shape — each CPU's identification, the full memory
table, the distribution — is read from `/proc`, `/etc/os-release` and `/sys` as gopsutil
reads it. A section that cannot be read is left out and named in a warning (its error type
only: no path or value of the host in a message), as Vault reports `HostInfoError`s.
"""

from __future__ import annotations

import os
import platform
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from tenantvault._clock import format_time

__all__ = ["host_info"]

Section = Callable[[], Any]


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() else value


def _cpus() -> list[dict[str, Any]]:
    """One entry per logical CPU from /proc/cpuinfo, as gopsutil's `cpu.Info()`."""
    cpus: list[dict[str, Any]] = []
    for block in Path("/proc/cpuinfo").read_text().split("\n\n"):
        fields = {}
        for line in block.splitlines():
            name, _, value = line.partition(":")
            fields[name.strip()] = value.strip()
        if "processor" not in fields:
            continue
        cpus.append(
            {
                "cpu": int(fields["processor"]),
                "vendorId": fields.get("vendor_id", ""),
                "family": fields.get("cpu family", ""),
                "model": fields.get("model", ""),
                "stepping": int(fields.get("stepping", "0") or 0),
                "physicalId": fields.get("physical id", ""),
                "coreId": fields.get("core id", ""),
                "cores": 1,  # gopsutil counts each logical CPU as one core of its own entry
                "modelName": fields.get("model name", ""),
                "mhz": _number(fields.get("cpu MHz", "0") or "0"),
                "cacheSize": int((fields.get("cache size", "0").split() or ["0"])[0]),
                "flags": fields.get("flags", "").split(),
                "microcode": fields.get("microcode", ""),
            }
        )
    return cpus


def _cpu_times() -> list[dict[str, Any]]:
    return [
        {
            "cpu": f"cpu{index}",
            "user": times.user,
            "system": times.system,
            "idle": times.idle,
            "nice": times.nice,
            "iowait": times.iowait,
            "irq": times.irq,
            "softirq": times.softirq,
            "steal": times.steal,
            "guest": times.guest,
            "guestNice": times.guest_nice,
        }
        for index, times in enumerate(psutil.cpu_times(percpu=True))
    ]


def _disks() -> list[dict[str, Any]]:
    disks: list[dict[str, Any]] = []
    for partition in psutil.disk_partitions(all=False):
        usage = psutil.disk_usage(partition.mountpoint)
        stats = os.statvfs(partition.mountpoint)
        inodes_used = stats.f_files - stats.f_ffree
        disks.append(
            {
                "path": partition.mountpoint,
                "fstype": partition.fstype,
                "total": usage.total,
                "free": usage.free,
                "used": usage.used,
                # Unrounded, as gopsutil gives it (psutil's `percent` has one decimal).
                "usedPercent": 100 * usage.used / (usage.used + usage.free)
                if usage.used + usage.free
                else 0,
                "inodesTotal": stats.f_files,
                "inodesUsed": inodes_used,
                "inodesFree": stats.f_ffree,
                "inodesUsedPercent": 100 * inodes_used / stats.f_files if stats.f_files else 0,
            }
        )
    return disks


def _os_release() -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in Path("/etc/os-release").read_text().splitlines():
        name, _, value = line.partition("=")
        fields[name.strip()] = value.strip().strip('"')
    return fields


def _platform() -> tuple[str, str, str]:
    """(platform, family, version) as gopsutil names them, e.g. debian, debian, 12.11."""
    try:
        release = _os_release()
    except OSError:
        return "", "", ""
    name = release.get("ID", "")
    family = (release.get("ID_LIKE", "").split() or [name])[0]
    version = release.get("VERSION_ID", "")
    debian = Path("/etc/debian_version")
    if name == "debian" and debian.exists():
        version = debian.read_text().strip()
    return name, family, version


def _virtualization() -> tuple[str, str]:
    if Path("/.dockerenv").exists():
        return "docker", "guest"
    try:
        if "docker" in Path("/proc/1/cgroup").read_text():
            return "docker", "guest"
    except OSError:
        pass
    return "", ""


def _host_id() -> str:
    for candidate in ("/sys/class/dmi/id/product_uuid", "/etc/machine-id"):
        try:
            text = Path(candidate).read_text().strip()
        except OSError:
            continue
        if len(text) == 32 and text.isalnum():
            # A machine-id, written as the UUID gopsutil makes of it.
            text = f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
        if text:
            return text.lower()
    return ""


def _host() -> dict[str, Any]:
    boot = int(psutil.boot_time())
    name, family, version = _platform()
    system, role = _virtualization()
    return {
        "hostname": socket.gethostname(),
        "uptime": max(0, int(time.time()) - boot),
        "bootTime": boot,
        "procs": len(psutil.pids()),
        "os": platform.system().lower(),
        "platform": name,
        "platformFamily": family,
        "platformVersion": version,
        "kernelVersion": platform.release(),
        "kernelArch": platform.machine(),
        "virtualizationSystem": system,
        "virtualizationRole": role,
        "hostid": _host_id(),
    }


# /proc/meminfo's rows by gopsutil's names (values in kB there, bytes here).
_MEMINFO = {
    "MemTotal": "total",
    "MemFree": "free",
    "MemAvailable": "available",
    "Buffers": "buffers",
    "Cached": "cached",
    "Active": "active",
    "Inactive": "inactive",
    "Writeback": "writeback",
    "WritebackTmp": "writebacktmp",
    "Dirty": "dirty",
    "Shmem": "shared",
    "Slab": "slab",
    "SReclaimable": "sreclaimable",
    "SUnreclaim": "sunreclaim",
    "PageTables": "pagetables",
    "SwapCached": "swapcached",
    "CommitLimit": "commitlimit",
    "Committed_AS": "committedas",
    "HighTotal": "hightotal",
    "HighFree": "highfree",
    "LowTotal": "lowtotal",
    "LowFree": "lowfree",
    "SwapTotal": "swaptotal",
    "SwapFree": "swapfree",
    "Mapped": "mapped",
    "VmallocTotal": "vmalloctotal",
    "VmallocUsed": "vmallocused",
    "VmallocChunk": "vmallocchunk",
    "HugePages_Total": "hugepagestotal",
    "HugePages_Free": "hugepagesfree",
    "Hugepagesize": "hugepagesize",
}


def _memory() -> dict[str, Any]:
    memory: dict[str, Any] = dict.fromkeys(_MEMINFO.values(), 0) | {"laundry": 0, "wired": 0}
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, _, value = line.partition(":")
        key = _MEMINFO.get(name.strip())
        if key is None:
            continue
        parts = value.split()
        amount = int(parts[0]) if parts else 0
        memory[key] = amount * 1024 if len(parts) > 1 and parts[1] == "kB" else amount
    memory["cached"] += memory["sreclaimable"]  # gopsutil counts reclaimable slab as cache
    used = memory["total"] - memory["available"]  # gopsutil's "used" since v4
    memory["used"] = used
    memory["usedPercent"] = 100 * used / memory["total"] if memory["total"] else 0
    return memory


_SECTIONS: dict[str, Section] = {
    "cpu": _cpus,
    "cpu_times": _cpu_times,
    "disk": _disks,
    "host": _host,
    "memory": _memory,
}


def host_info(now_ns: int) -> tuple[dict[str, Any], list[str]]:
    """The sections that could be read, and a warning for each that could not."""
    data: dict[str, Any] = {"timestamp": format_time(now_ns)}
    warnings: list[str] = []
    for name, read in _SECTIONS.items():
        try:
            data[name] = read()
        except (OSError, ValueError, psutil.Error) as error:
            warnings.append(f"HostInfoError: {name}: {type(error).__name__}")
    return data, warnings
