"""Early stopping counts only falls in the validation loss of at least ``trainer.min_delta``."""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from fusioncore.pipeline.engine import TrainerSettings, make_trainer


class CreepingLoss(pl.LightningModule):
    """val_loss falls by ``step`` every epoch: forever "better", never by much."""

    def __init__(self, step: float) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.step_size = step

    def training_step(self, batch, batch_idx):
        return (self.weight * batch[0]).sum()

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", 1.0 - self.step_size * self.current_epoch)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def _epochs_trained(min_delta: float, step: float) -> int:
    settings = TrainerSettings(max_epochs=12, patience=2, min_delta=min_delta, accelerator="cpu",
                               progress=False)
    trainer = make_trainer(settings, None, name="creep")
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(4, 1)), batch_size=4)
    trainer.fit(CreepingLoss(step), loader, loader)
    return trainer.current_epoch


def test_falls_below_min_delta_do_not_count_as_improvements():
    # 1e-5 per epoch, as a detector that already separates its validation block perfectly
    assert _epochs_trained(min_delta=1e-4, step=1e-5) == 3  # epoch 0, then patience 2
    assert _epochs_trained(min_delta=0.0, step=1e-5) == 12  # without it: every epoch "improves"


def test_real_improvements_still_count():
    assert _epochs_trained(min_delta=1e-4, step=1e-2) == 12
