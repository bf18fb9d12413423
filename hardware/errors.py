"""Errors of the hardware-in-the-loop runner. Each message is one line, fit for a CLI."""

from __future__ import annotations


class HilError(Exception):
    """Base class: anything that stops a HIL run."""


class ExportError(HilError):
    """The export directory is missing files, is inconsistent, or a build failed."""


class DeviceOpenError(HilError):
    """The device (port, host process, QEMU) could not be opened or started."""


class DeviceLost(HilError):
    """The device went away: its process exited, the port closed or was unplugged."""


class DeviceTimeout(HilError):
    """No valid reply after all retries."""


class DeviceError(HilError):
    """The device answered with an ERROR the host cannot recover from."""


class HandshakeError(HilError):
    """HELLO_ACK does not match what the host expects (version, dimensions)."""


class ManifestMismatch(HandshakeError):
    """The device runs a different policy (manifest SHA-256 differs)."""


class StateLost(DeviceError):
    """A stateful device's policy state is not at the step the host sent (ERROR 5): it
    rebooted or missed a STEP mid-episode. The runner replays the episode to recover."""
