"""SparseGPT (Frantar & Alistarh 2023): prune with the inverse Hessian of each layer's inputs and
update the remaining weights to absorb the error (optimal brain surgeon, column by column)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from greenai.services.pruning.calibrated import calibration_batches, layerwise, linear_inputs
from greenai.services.pruning.methods.base import PruneConfig, PruneContext, PruningMethod
from greenai.services.pruning.methods.sparsity import SparsityConfig
from greenai.shared.model_layout import layout_of


class SparseGPTConfig(SparsityConfig):
    block_size: int = Field(default=128, ge=1)
    damp_percent: float = Field(default=0.01, gt=0, lt=1)


def sparsegpt_prune(
    weight: Any, hessian: Any, sparsity: float, n_m: tuple[int, int] | None, block: int, damp: float
) -> Any:
    """The pruned and updated weight. `hessian` is XᵀX summed over calibration tokens (any scale)."""
    import torch

    W = weight.detach().float().clone()
    H = hessian.detach().float().clone()
    cols = W.shape[1]
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    H += damp * torch.mean(torch.diag(H)) * torch.eye(cols)
    Hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    pruned_per_group, group = (n_m[1] - n_m[0], n_m[1]) if n_m else (0, 0)
    for i1 in range(0, cols, block):
        i2 = min(i1 + block, cols)
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        d = torch.diag(Hinv1)
        if n_m is None:
            scores = W1**2 / d.reshape(1, -1) ** 2
            k = int(scores.numel() * sparsity)
            mask1 = torch.zeros_like(W1, dtype=torch.bool)
            if k:
                threshold = torch.sort(scores.flatten())[0][k - 1]
                mask1 = scores <= threshold
        else:
            mask1 = torch.zeros_like(W1, dtype=torch.bool)
        for i in range(i2 - i1):
            w = W1[:, i]
            if n_m is not None and i % group == 0:
                scores = W1[:, i : i + group] ** 2 / d[i : i + group].reshape(1, -1) ** 2
                drop = torch.topk(scores, pruned_per_group, dim=1, largest=False).indices
                mask1.scatter_(1, i + drop, True)
            q = w.clone()
            q[mask1[:, i]] = 0
            Q1[:, i] = q
            err = (w - q) / Hinv1[i, i]
            W1[:, i:] -= err.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err
        W[:, i1:i2] = Q1
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
    return W.to(weight.dtype)


class SparseGPTPruning(PruningMethod):
    name = "sparsegpt"
    config_class = SparseGPTConfig
    needs_calibration = True

    def prune(self, model: Any, tokenizer: Any, config: PruneConfig, ctx: PruneContext) -> None:
        assert isinstance(config, SparseGPTConfig) and ctx.calibration
        import torch

        layout = layout_of(model)
        batches = calibration_batches(tokenizer, ctx.calibration, ctx.seq_len, ctx.device)
        n_m: tuple[int, int] | None = None
        if config.pattern:
            n, m = config.pattern.split(":")
            n_m = (int(n), int(m))

        def on_layer(index: int, layer: Any, inputs: list[tuple[Any, dict[str, Any]]]) -> None:
            hessians: dict[str, Any] = {}

            def visit(name: str, module: Any, x: Any) -> None:
                flat = x.detach().float().reshape(-1, x.shape[-1])
                h = flat.t() @ flat
                hessians[name] = hessians[name] + h if name in hessians else h

            linear_inputs(layer, inputs, visit)
            with torch.no_grad():
                for name, proj in layout.block_linears(layer).items():
                    if name in hessians:
                        proj.weight.copy_(  # [out, in] view: GPT-2's Conv1D is written through transposed
                            sparsegpt_prune(
                                proj.weight,
                                hessians[name],
                                config.sparsity,
                                n_m,
                                config.block_size,
                                config.damp_percent,
                            )
                        )

        layerwise(model, batches, on_layer)
