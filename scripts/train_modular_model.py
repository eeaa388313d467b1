"""Train the modular-addition transformer until it groks (rule train_modular_model)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.workflow.rulekit import run  # noqa: E402


def main(smk):
    import torch

    from saesim.sources.modular import ModularConfig, save_modular_model, train_modular_model
    from saesim.workflow.gpu import resolve_device

    torch.set_num_threads(smk.threads)
    values = dict(smk.params.model)
    values["device"] = resolve_device(values.get("device", "auto"))
    cfg = ModularConfig.from_dict(values)
    model, history = train_modular_model(cfg)
    save_modular_model(smk.output[0], model, cfg, history)
    print({k: history.get(k) for k in ("grok_epoch", "final_train_acc", "final_test_acc", "epochs_run", "wall_s")})


run(snakemake, main)  # noqa: F821
