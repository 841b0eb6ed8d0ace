"""A minimal training script on `stablepaint.training.utils`, used by tests/test_training_utils.py.

It trains a two-layer conv net to map lineart + hints to the illustration, with the same skeleton as the real
scripts in train/: flags, Accelerator, data, the step loop with accumulation, atomic checkpoints, resume, export.
"""

import argparse
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from stablepaint.training.utils import (
    add_training_args,
    build_train_dataloader,
    check_training_args,
    epoch_batches,
    make_accelerator,
    resume_from_checkpoint,
    save_checkpoint,
    training_schedule,
)


def parse_args(input_args=None):
    parser = add_training_args(argparse.ArgumentParser(description=__doc__), resolution=32)
    args = parser.parse_args(input_args)
    check_training_args(args)
    return args


def main(args):
    accelerator = make_accelerator(args)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(5, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 3, padding=1)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2))
    dataloader, transform = build_train_dataloader(args, accelerator)
    model, optimizer, dataloader = accelerator.prepare(model, optimizer, dataloader)
    steps_per_epoch, num_epochs = training_schedule(args, dataloader, accelerator)
    global_step, first_epoch, skip = resume_from_checkpoint(accelerator, args, steps_per_epoch)

    for epoch in range(first_epoch, num_epochs):
        for batch in epoch_batches(accelerator, dataloader, transform, epoch, skip if epoch == first_epoch else 0):
            with accelerator.accumulate(model):
                hints = F.interpolate(batch["hints"], size=batch["lineart"].shape[-2:], mode="nearest")
                output = model(torch.cat([batch["lineart"], hints], dim=1))
                loss = F.mse_loss(output, batch["image"])
                accelerator.backward(loss)
                optimizer.step()
                optimizer.zero_grad()
            if accelerator.sync_gradients:
                global_step += 1
                if global_step % args.checkpointing_steps == 0:
                    save_checkpoint(accelerator, args.output_dir, global_step, args.checkpoints_total_limit)
                if global_step >= args.max_train_steps:
                    break
        if global_step >= args.max_train_steps:
            break

    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        state = {k: v.detach().cpu().contiguous() for k, v in accelerator.unwrap_model(model).state_dict().items()}
        save_file(state, os.path.join(args.output_dir, "final.safetensors"), metadata={"step": str(global_step)})
    accelerator.end_training()


if __name__ == "__main__":
    main(parse_args())
