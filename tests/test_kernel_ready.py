"""SandboxedKernel._wait_until_ready, against a fake client: no kernel is the point here."""

from __future__ import annotations

from collections import deque
from queue import Empty

import pytest

from autograder.exceptions import SandboxError
from autograder.kernel import SandboxedKernel


class FakeClient:
    """Replies to kernel_info on shell; the first `lose` idle statuses never reach iopub
    (ZeroMQ's slow joiner), and iopub already holds a message of another request."""

    def __init__(self, lose: int = 0, reply: bool = True) -> None:
        self.lose, self.reply, self.sent = lose, reply, []
        self.shell: deque = deque()
        self.iopub: deque = deque([_status("startup", "starting")])

    def kernel_info(self) -> str:
        msg_id = f"info{len(self.sent)}"
        self.sent.append(msg_id)
        if self.reply:
            self.shell.append(
                {"parent_header": {"msg_id": msg_id}, "msg_type": "kernel_info_reply"}
            )
            if self.lose:
                self.lose -= 1
            else:
                self.iopub.extend([_status(msg_id, "busy"), _status(msg_id, "idle")])
        return msg_id

    def get_shell_msg(self, timeout: float) -> dict:
        if not self.shell:
            raise Empty
        return self.shell.popleft()

    def get_iopub_msg(self, timeout: float) -> dict:
        if not self.iopub:
            raise Empty
        return self.iopub.popleft()


def _status(parent: str, state: str) -> dict:
    return {
        "parent_header": {"msg_id": parent},
        "msg_type": "status",
        "content": {"execution_state": state},
    }


class FakeManager:
    def __init__(self, alive: bool) -> None:
        self.alive = alive

    def is_alive(self) -> bool:
        return self.alive


def _kernel(client: FakeClient, alive: bool = True) -> SandboxedKernel:
    kernel = object.__new__(SandboxedKernel)  # no sandbox: only the handshake is tested
    kernel.kc, kernel.km = client, FakeManager(alive)  # type: ignore[assignment]
    return kernel


def test_ready_as_soon_as_iopub_carries_the_requests_idle_status():
    client = FakeClient()
    _kernel(client)._wait_until_ready(5)
    assert client.sent == ["info0"]


def test_a_status_lost_before_the_subscription_is_asked_for_again():
    client = FakeClient(lose=2)
    _kernel(client)._wait_until_ready(5)
    assert client.sent == ["info0", "info1", "info2"]


def test_a_kernel_that_dies_or_never_answers_is_a_sandbox_error():
    with pytest.raises(SandboxError, match="died before replying"):
        _kernel(FakeClient(reply=False), alive=False)._wait_until_ready(5)
    with pytest.raises(SandboxError, match=r"no reply in 0.05 s"):
        _kernel(FakeClient(reply=False))._wait_until_ready(0.05)


def test_a_late_reply_to_an_earlier_request_is_skipped():
    client = FakeClient(lose=1)
    client.shell.append({"parent_header": {"msg_id": "older"}, "msg_type": "kernel_info_reply"})
    _kernel(client)._wait_until_ready(5)
    assert client.sent == ["info0", "info1"]


def test_only_the_reply_to_this_request_counts():
    client = FakeClient(reply=False)
    client.shell.append({"parent_header": {"msg_id": "older"}, "msg_type": "kernel_info_reply"})
    kernel = _kernel(client)
    assert kernel._shell_reply_to("info0", wait=0.05) is False
    client.shell.append({"parent_header": {"msg_id": "info0"}, "msg_type": "kernel_info_reply"})
    assert kernel._shell_reply_to("info0", wait=0.05) is True
