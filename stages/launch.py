"""How a training stage starts its work: in this process (alone or as a torchrun rank) or per TPU device."""

from collections.abc import Callable

from nonspeech.devices import xla


def launch(job: Callable[[], object], device: str) -> None:
    """Run job() here, or once per TPU device with torch_xla's launcher when train.device is xla."""
    if device == "xla":
        xla.launch(job)
    else:
        job()
