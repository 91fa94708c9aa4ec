"""Two-stage training of the controller (and the mask-network baseline); a run is a folder.

``train(config, run_dir) -> results`` runs, or resumes, every stage:

* stage 1 — the controller alone learns the noise profile (L1 in dB vs the targets recomputed from
  the augmented noise, `training.data`) while its scalar controls are held near the table's
  defaults (a regularizer): cheap, no gate in the graph;
* stage 2 — end to end through the spectral gate (`Denoiser`) vs the clean target: multi-resolution
  STFT + SI-SDR, plus a small profile term that keeps the profile control interpretable;
* masknet — the black-box baseline (`training.masknet.MaskNet`) with the stage-2 audio loss and the
  same data order and crops (fewer epochs than stage 2 in the demo: its steps cost more).

Every epoch ends with a validation on the fixed valid set (whole clips, stored mixtures): SI-SDR
improvement per source type, profile error, mean controls; then a checkpoint and one line of
``metrics.jsonl``. The blind DSP baseline (gate with the blind quantile profile and default
controls) is evaluated once on the same set.

The run folder's files are described in `training.run_folder`.

Resuming: rerunning `train` on the same folder continues after the last checkpointed epoch (an
interrupted epoch is redone from its start; the data of an epoch depends only on (seed, epoch), so
a resumed run gives the same numbers as an uninterrupted one). The config must be the same (up to
`config.RESULT_IRRELEVANT_KEYS`), as must the examples manifest.

A NaN/inf loss or gradient stops the run with `TrainingError` naming the stage, epoch and step; the
checkpoints of the last good epoch are left untouched.

Determinism: `torch.manual_seed(seed)` before building each model, data as in `training.data`. On
CPU with the same number of torch threads, the same config gives bit-identical metrics.

Why one module of ~540 lines: it holds the two-stage loop (`StageRunner`), the objectives of the
stages (`_Objectives`) and the order of the stages (`_Trainer`), which change together; the run
folder, data, models and losses live in their own modules.
"""
from __future__ import annotations

import contextlib
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from manifests.lock import FolderLock

from .blind import blind_noise_profile_db
from .controls import SCALAR_CONTROL_NAMES, make_controls
from .gate import spectral_gate
from .checkpoint import is_finite_state, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .controller import Controller, Denoiser
from .data import EpochSampler, EvalSet, ExampleIndex, TrainDataset, make_loader
from .device import resolve_device
from .ema import WeightAverage
from .losses import MultiResolutionSTFTLoss, control_regularizer, harm_loss, profile_loss, si_sdr
from .masknet import MaskNet
from .run_folder import RunFolder, TrainingError, checkpoint_paths, flatten, write_json

Tensor = torch.Tensor

EVAL_BATCH = 16
LR_FINAL_FRACTION = 0.1  # cosine decay from lr to lr * this over a stage's planned steps


# --------------------------------------------------------------------------------------------------
# evaluation on the fixed valid set
# --------------------------------------------------------------------------------------------------


def _summarize(eval_set: EvalSet, sdr_in: Tensor, sdr_out: Tensor, extra: Mapping[str, Tensor] | None = None) -> dict:
    """Per source type and overall means of SI-SDR in/out/improvement (+ extra per-item metrics)."""
    extra = dict(extra or {})
    types = sorted(set(eval_set.source_type))
    out: dict[str, Any] = {"per_source_type": {}}
    for t in types + ["all"]:
        mask = torch.tensor([t == "all" or s == t for s in eval_set.source_type])
        entry = {"n": int(mask.sum()), "si_sdr_in": float(sdr_in[mask].mean()), "si_sdr_out": float(sdr_out[mask].mean()),
                 "si_sdri": float((sdr_out - sdr_in)[mask].mean())}
        for name, values in extra.items():
            entry[name] = float(values[mask].mean())
        if t == "all":
            out.update(entry)
        else:
            out["per_source_type"][t] = entry
    out["score"] = sum(out["per_source_type"][t]["si_sdri"] for t in types) / len(types)  # mean over source types
    return out


@torch.no_grad()
def evaluate_model(model: torch.nn.Module, eval_set: EvalSet, device: torch.device, batch_size: int = EVAL_BATCH) -> dict:
    """Valid metrics of a `Denoiser` (with profile error and mean controls) or a `MaskNet`."""
    model.eval()
    sdr_in, sdr_out, profile_err = [], [], []
    controls_sum: dict[str, float] = {}
    for sl, noisy, clean in eval_set.batches(batch_size):
        noisy, clean = noisy.to(device), clean.to(device)
        if isinstance(model, Denoiser):
            out, controls = model(noisy)
            profile_err.append((controls["noise_profile_db"].cpu() - eval_set.profile_db[sl]).abs().mean(dim=-1))
            for name in SCALAR_CONTROL_NAMES:
                controls_sum[name] = controls_sum.get(name, 0.0) + float(controls[name].sum())
        else:
            out = model(noisy)
        sdr_in.append(si_sdr(noisy, clean).cpu())
        sdr_out.append(si_sdr(out, clean).cpu())
    extra = {"profile_mae_db": torch.cat(profile_err)} if profile_err else None
    result = _summarize(eval_set, torch.cat(sdr_in), torch.cat(sdr_out), extra)
    if controls_sum:
        result["mean_controls"] = {k: v / len(eval_set) for k, v in controls_sum.items()}
    return result


@torch.no_grad()
def evaluate_blind_dsp(eval_set: EvalSet, device: torch.device, quantile: float = 0.1, batch_size: int = EVAL_BATCH) -> dict:
    """Valid metrics of the classic DSP: blind quantile noise profile, every other control at its default."""
    layout = eval_set.layout
    sdr_in, sdr_out, profile_err = [], [], []
    for sl, noisy, clean in eval_set.batches(batch_size):
        noisy, clean = noisy.to(device), clean.to(device)
        profile = blind_noise_profile_db(noisy, layout, quantile=quantile)
        controls = make_controls(noisy.shape[0], layout, device=device, noise_profile_db=profile)
        out = spectral_gate(noisy, controls, layout)
        profile_err.append((profile.cpu() - eval_set.profile_db[sl]).abs().mean(dim=-1))
        sdr_in.append(si_sdr(noisy, clean).cpu())
        sdr_out.append(si_sdr(out, clean).cpu())
    return _summarize(eval_set, torch.cat(sdr_in), torch.cat(sdr_out), {"profile_mae_db": torch.cat(profile_err)})


def _brief(metrics: Mapping) -> str:
    parts = [f"{t} {m['si_sdri']:+.2f}" for t, m in metrics["per_source_type"].items()]
    text = "SI-SDRi " + ", ".join(parts) + f" dB (score {metrics['score']:+.2f})"
    if "profile_mae_db" in metrics:
        text += f", profile MAE {metrics['profile_mae_db']:.2f} dB"
    return text


# --------------------------------------------------------------------------------------------------
# the generic stage loop
# --------------------------------------------------------------------------------------------------


@dataclass
class _Stage:
    name: str  # stage1 | stage2 | masknet
    kind: str  # checkpoint kind
    module: torch.nn.Module  # parameters to optimize / state to save
    model_config: dict
    step: Callable[[dict], tuple[Tensor, dict[str, Tensor]]]  # batch -> (loss, parts)
    evaluate: Callable[[], dict]
    epochs: int
    max_minutes: float
    lr: float
    grad_clip: float
    path: Path
    on_epoch: Callable[[int, dict, dict], None] | None = None  # (epoch, metrics, extra) after the checkpoint
    ema_decay: float = 0.0  # > 0: validate, select and save an EMA of the weights (training/ema.py)


def _lr_at(stage: _Stage, step: int, steps_per_epoch: int) -> float:
    total = max(1, stage.epochs * steps_per_epoch)
    progress = min(1.0, step / total)
    return stage.lr * (LR_FINAL_FRACTION + (1.0 - LR_FINAL_FRACTION) * 0.5 * (1.0 + math.cos(math.pi * progress)))


class StageRunner:
    """One training stage in named steps: `resume` (or start), `train_epoch`, `validate`, `checkpoint`, and
    `run` for the whole stage (resuming, skipping when done, stopping on the time cap)."""

    def __init__(self, run: RunFolder, stage: _Stage, loader, sampler: EpochSampler, device: torch.device,
                 hooks: Mapping[str, Callable], elapsed_by_stage: dict[str, float]):
        self.run, self.stage, self.loader, self.sampler, self.device = run, stage, loader, sampler, device
        self.hooks, self.elapsed_by_stage = hooks, elapsed_by_stage
        self.optimizer = torch.optim.AdamW(stage.module.parameters(), lr=stage.lr, weight_decay=0.0)
        self.average: WeightAverage | None = None
        self.start_epoch, self.step, self.elapsed = 0, 0, 0.0
        self.last_metrics: dict = {}

    def resume(self) -> dict | None:
        """Load the stage's checkpoint if there is one; returns the stage's result if it is already complete."""
        stage, run = self.stage, self.run
        if not stage.path.exists():
            run.sync_metrics(stage.name, -1, None)
            if stage.ema_decay > 0:
                self.average = WeightAverage(stage.module, stage.ema_decay)
            return None
        ckpt = load_checkpoint(stage.path, map_location=self.device)
        stage.module.load_state_dict(ckpt["state_dict"])  # with an EMA: the average, the stage's result
        run.sync_metrics(stage.name, ckpt["epoch"], ckpt["extra"].get("log_entry"))
        self.elapsed_by_stage[stage.name] = float(ckpt["extra"].get("elapsed_s", 0.0))
        if ckpt["extra"].get("complete"):
            run.log(f"[{stage.name}] already complete (epoch {ckpt['epoch'] + 1}/{stage.epochs}); skipping")
            return {**ckpt["metrics"], "epochs_done": ckpt["epoch"] + 1,
                    "time_limited": bool(ckpt["extra"].get("time_limited"))}
        if stage.ema_decay > 0:  # the average starts from the loaded state_dict; the optimizer resumes the raw weights
            self.average = WeightAverage(stage.module, stage.ema_decay)
            stage.module.load_state_dict(ckpt["extra"]["raw_state_dict"])
        self.optimizer.load_state_dict(ckpt["optimizer_state"])
        self.start_epoch, self.step = ckpt["epoch"] + 1, ckpt["step"]
        self.elapsed = float(ckpt["extra"].get("elapsed_s", 0.0))
        run.log(f"[{stage.name}] resuming after epoch {ckpt['epoch'] + 1}/{stage.epochs} (step {self.step})")
        self.last_metrics = ckpt["metrics"]
        return None

    def _backward_step(self, epoch: int, batch_index: int, loss: Tensor) -> None:
        stage = self.stage
        if not bool(torch.isfinite(loss.detach())):
            _stop(self.run, stage, epoch, batch_index, f"non-finite loss ({float(loss.detach())})")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if stage.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(stage.module.parameters(), stage.grad_clip)
        else:
            norm = torch.sqrt(sum(p.grad.square().sum() for p in stage.module.parameters() if p.grad is not None))
        if not bool(torch.isfinite(norm)):
            _stop(self.run, stage, epoch, batch_index, f"non-finite gradient norm ({float(norm)})")
        self.optimizer.step()
        if self.average is not None:
            self.average.update(self.step)
        self.step += 1

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the loader -> mean training losses of the epoch."""
        stage = self.stage
        steps_per_epoch = len(self.loader)
        stage.module.train()
        self.sampler.set_epoch(epoch)
        sums: dict[str, float] = {}
        for i, batch in enumerate(self.loader):
            for group in self.optimizer.param_groups:
                group["lr"] = _lr_at(stage, self.step, steps_per_epoch)
            loss, parts = stage.step(batch)
            if "loss" in self.hooks:
                loss = self.hooks["loss"](stage.name, epoch, i, loss)
            self._backward_step(epoch, i, loss)
            sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
            for name, value in parts.items():
                sums[name] = sums.get(name, 0.0) + float(value)
        if not is_finite_state(stage.module.state_dict()):
            _stop(self.run, stage, epoch, steps_per_epoch - 1, "non-finite weights after the epoch")
        return {k: v / steps_per_epoch for k, v in sums.items()}

    def validate(self, epoch: int) -> dict:
        """Validation metrics of the (averaged) weights; non-finite ones stop the run."""
        with _averaged(self.average):
            metrics = self.stage.evaluate()
        bad = [key for key, value in flatten(metrics).items() if isinstance(value, float) and not math.isfinite(value)]
        if bad:
            _stop(self.run, self.stage, epoch, None, f"non-finite validation metrics ({', '.join(bad[:3])})")
        return metrics

    def checkpoint(self, epoch: int, train_metrics: dict, metrics: dict, epoch_time: float, out_of_time: bool) -> None:
        """Write the epoch's checkpoint (atomically) and its metrics line."""
        stage, run = self.stage, self.run
        complete = epoch + 1 == stage.epochs or out_of_time
        entry = {"event": "epoch", "stage": stage.name, "epoch": epoch, "step": self.step,
                 "lr": self.optimizer.param_groups[0]["lr"], "train": train_metrics, "valid": metrics,
                 "epoch_time_s": epoch_time, "elapsed_s": self.elapsed}
        extra = {"complete": complete, "time_limited": out_of_time, "elapsed_s": self.elapsed, "log_entry": entry,
                 "config_hash": run.config.result_hash(), "planned_epochs": stage.epochs}
        if self.average is not None:
            # copies, not views: on_epoch below swaps the averaged weights into the same tensors
            extra["raw_state_dict"] = {k: v.detach().clone() for k, v in stage.module.state_dict().items()}
        if stage.on_epoch is not None:
            with _averaged(self.average):
                stage.on_epoch(epoch, metrics, extra)
        save_checkpoint(stage.path, kind=stage.kind, model_config=stage.model_config, layout=self.loader.dataset.layout,
                        state_dict=(self.average or stage.module).state_dict(), optimizer_state=self.optimizer.state_dict(),
                        stage=stage.name, epoch=epoch, step=self.step, metrics=metrics, extra=extra)
        run.append_metrics(entry)
        run.log(f"[{stage.name}] epoch {epoch + 1}/{stage.epochs} loss {train_metrics['loss']:.4f} | valid {_brief(metrics)} "
                f"| {epoch_time:.0f} s")

    def run_stage(self) -> dict:
        """Train (or resume, or skip if done) the stage; returns its last valid metrics (+ status)."""
        stage = self.stage
        done = self.resume()
        if done is not None:
            return done
        if stage.epochs == 0:
            self.run.log(f"[{stage.name}] 0 epochs: skipped")
            return {"epochs_done": 0, "time_limited": False}
        if len(self.loader) == 0:
            raise TrainingError(f"[{stage.name}] an epoch holds no whole batch: lower data.batch_size "
                                f"({self.loader.batch_size}) or raise data.epoch_size")
        time_limited = False
        for epoch in range(self.start_epoch, stage.epochs):
            began = time.perf_counter()
            train_metrics = self.train_epoch(epoch)
            metrics = self.validate(epoch)
            epoch_time = time.perf_counter() - began
            self.elapsed += epoch_time
            self.elapsed_by_stage[stage.name] = self.elapsed
            out_of_time = stage.max_minutes > 0 and self.elapsed > stage.max_minutes * 60 and epoch + 1 < stage.epochs
            self.checkpoint(epoch, train_metrics, metrics, epoch_time, out_of_time)
            self.last_metrics = metrics
            if "epoch_end" in self.hooks:
                self.hooks["epoch_end"](stage.name, epoch)
            if out_of_time:
                time_limited = True
                self.run.log(f"[{stage.name}] WARNING: max_minutes={stage.max_minutes} reached after epoch {epoch + 1}/"
                             f"{stage.epochs}; stopping this stage early (results now depend on the machine's speed; "
                             "raise max_minutes or lower epochs)")
                self.run.append_metrics({"event": "time_limit", "stage": stage.name, "epoch": epoch, "elapsed_s": self.elapsed})
                break
        if self.average is not None:  # the module leaves the stage holding its result, as a resumed run's skip path loads it
            stage.module.load_state_dict(self.average.state_dict())
        return {**self.last_metrics, "epochs_done": epoch + 1, "time_limited": time_limited}


def _averaged(average: WeightAverage | None):
    """Context in which the stage's module holds its averaged weights (a no-op without an EMA)."""
    return average.applied() if average is not None else contextlib.nullcontext()


def _stop(run: RunFolder, stage: _Stage, epoch: int, step_in_epoch: int | None, what: str):
    """Record and raise a TrainingError; `step_in_epoch` None: found after the epoch's batches."""
    kept = f"{stage.path} (its last completed epoch)" if stage.path.exists() else "none for this stage yet"
    where = f"after epoch {epoch + 1}" if step_in_epoch is None else f"at epoch {epoch + 1}, batch {step_in_epoch + 1}"
    message = (f"[{stage.name}] {what} {where}: training stopped. "
               f"Last good checkpoint kept: {kept}. Lower the stage's lr or grad_clip, or check the data; "
               "rerunning resumes from that checkpoint.")
    run.append_metrics({"event": "error", "stage": stage.name, "epoch": epoch, "batch": step_in_epoch, "message": message})
    run.log(message)
    raise TrainingError(message)


# --------------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------------


def _controller_config(model: Controller) -> dict:
    return {**model.config, "link_channels": True}


def train(config: TrainConfig, run_dir, *, hooks: Mapping[str, Callable] | None = None,
          log: Callable[[str], None] | None = None) -> dict:
    """Train (or resume) every stage of `config` in `run_dir`; returns the results (also in results.json).

    hooks (tests/debugging): "loss": f(stage, epoch, batch, loss) -> loss, called on every training
    loss before the finiteness check; "epoch_end": f(stage, epoch), called after each epoch's
    checkpoint (raise in it to simulate an interruption).
    """
    device = resolve_device(config.device)
    index = ExampleIndex(config.data.build)  # refuses a missing/other-version manifest before touching run_dir
    run_dir = Path(run_dir)
    fresh = not run_dir.exists()
    threads = torch.get_num_threads()
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    lock = FolderLock(run_dir, "training train", announce=log or print)
    lock.acquire()
    finished = False
    try:
        results = _train(config, run_dir, index, device, dict(hooks or {}), log)
        finished = True
        return results
    finally:
        lock.release()
        torch.set_num_threads(threads)
        if fresh and not finished and not any(path.exists() for path in checkpoint_paths(run_dir).values()):
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing to resume: the next run starts clean


class _Objectives:
    """The training steps, batch -> (loss, logged parts): stage 1 (profile), stage 2 (end to end through the
    gate) and the mask network (the stage-2 audio objective)."""

    def __init__(self, config: TrainConfig, denoiser: Denoiser, device: torch.device):
        self.s1, self.s2 = config.stage1, config.stage2
        self.denoiser, self.controller, self.device = denoiser, denoiser.controller, device
        self.mrstft = MultiResolutionSTFTLoss().to(device)

    def stage1(self, batch):
        noisy, target = batch["noisy"].to(self.device), batch["profile_db"].to(self.device)
        controls, normalized = self.controller.predict(noisy)
        lp = profile_loss(controls["noise_profile_db"], target)
        lc = control_regularizer(normalized)
        return (self.s1.weight_profile * lp + self.s1.weight_controls * lc,
                {"profile_l1_db": lp.detach(), "controls_reg": lc.detach()})

    def audio_loss(self, out, noisy, clean):
        """The stage-2 audio objective (shared with the mask network): MR-STFT - SI-SDR + SI-SDR lost vs the input."""
        s2 = self.s2
        mr = self.mrstft(out, clean)
        sd = si_sdr(out, clean).mean()
        harm = harm_loss(out, noisy, clean)
        loss = s2.weight_mrstft * mr - s2.weight_sisdr * sd + s2.weight_harm * harm
        return loss, {"mrstft": mr.detach(), "si_sdr_db": sd.detach(), "harm_db": harm.detach()}

    def stage2(self, batch):
        device = self.device
        noisy, clean, target = batch["noisy"].to(device), batch["clean"].to(device), batch["profile_db"].to(device)
        out, controls, normalized = self.denoiser.predict(noisy)
        loss, logged = self.audio_loss(out, noisy, clean)
        lp = profile_loss(controls["noise_profile_db"], target)
        lc = control_regularizer(normalized)
        loss = loss + self.s2.weight_profile * lp + self.s2.weight_controls * lc
        return loss, {**logged, "profile_l1_db": lp.detach(), "controls_reg": lc.detach()}

    def masknet_step(self, masknet: MaskNet) -> Callable[[dict], tuple[Tensor, dict]]:
        def step(batch):
            noisy, clean = batch["noisy"].to(self.device), batch["clean"].to(self.device)
            return self.audio_loss(masknet(noisy), noisy, clean)

        return step


class _Trainer:
    """A whole run in named steps: `baseline`, `train_controller` (stages 1 and 2, `best.pt`), `train_masknet`,
    `finish` (results.json and the summary)."""

    def __init__(self, config: TrainConfig, run_dir: Path, index: ExampleIndex, device: torch.device, hooks: dict, log):
        self.config, self.device, self.hooks = config, device, hooks
        self.run = RunFolder(run_dir, config, device, log)
        self.wall = time.perf_counter()
        self.run.log(f"run {self.run.dir} ({'resumed' if self.run.resumed else 'new'}): data {config.data.build}, "
                     f"device {device}, {torch.get_num_threads()} torch threads, {config.data.num_workers} data workers")
        self.layout = index.layout
        data = config.data
        train_set = TrainDataset(index, "train", data.crop_s, data.augment, config.seed)
        self.sampler = EpochSampler(train_set.source_types, data.source_weights, data.epoch_size, config.seed)
        self.loader = make_loader(train_set, self.sampler, data.batch_size, data.num_workers)
        t0 = time.perf_counter()
        self.valid = EvalSet(index, "valid", data.eval_crop_s)
        self.run.log(f"data: {len(train_set)} train examples ({len(self.sampler)} per epoch, {len(self.loader)} batches of "
                     f"{data.batch_size} x {data.crop_s} s), {len(self.valid)} valid clips of "
                     f"{self.valid.noisy.shape[-1] / self.layout.sample_rate:.2f} s (loaded in {time.perf_counter() - t0:.1f} s)")
        self.paths = self.run.paths
        self.results: dict[str, Any] = {}
        self.elapsed: dict[str, float] = {}  # training + validation seconds per stage, over every invocation
        self.stage_times: dict[str, float] = {}
        self.best: dict[str, Any] | None = None  # stage 2's best epoch so far: {"epoch", "score"}

    def _stage(self, stage: _Stage) -> dict:
        t0 = time.perf_counter()
        result = StageRunner(self.run, stage, self.loader, self.sampler, self.device, self.hooks, self.elapsed).run_stage()
        self.stage_times[stage.name] = time.perf_counter() - t0
        return result

    def baseline(self) -> None:
        blind = evaluate_blind_dsp(self.valid, self.device, quantile=self.config.controller.prior_quantile)
        self.run.log(f"[baseline] blind DSP, default controls: valid {_brief(blind)}")
        if not any(e.get("event") == "baseline" for e in self.run.read_metrics()):
            self.run.append_metrics({"event": "baseline", "stage": "blind_dsp", "valid": blind})
        self.results["baseline_blind_dsp"] = blind

    def _keep_best(self, epoch: int, metrics: dict, extra: dict) -> None:
        """After each stage-2 epoch: `best.pt` when the validation score is the best so far."""
        if self.best is None or metrics["score"] > self.best["score"]:
            self.best = {"epoch": epoch, "score": metrics["score"]}
            save_checkpoint(self.paths["best"], kind="controller", model_config=self.model_config, layout=self.layout,
                            state_dict=self.controller.state_dict(), stage="stage2", epoch=epoch, step=0, metrics=metrics,
                            extra={"selected_by": "best valid mean SI-SDRi over source types (stage 2)",
                                   "config_hash": self.config.result_hash()})
        extra["best"] = self.best

    def train_controller(self) -> None:
        config, paths = self.config, self.paths
        torch.manual_seed(config.seed)
        self.controller = Controller(self.layout, **asdict(config.controller)).to(self.device)
        denoiser = Denoiser(self.controller)
        self.model_config = _controller_config(self.controller)
        self.objectives = _Objectives(config, denoiser, self.device)
        s1, s2 = config.stage1, config.stage2

        def evaluate_controller():
            return evaluate_model(denoiser, self.valid, self.device)

        self.results["stage1"] = self._stage(_Stage("stage1", "controller", self.controller, self.model_config,
                                                    self.objectives.stage1, evaluate_controller, s1.epochs, s1.max_minutes,
                                                    s1.lr, s1.grad_clip, paths["stage1"]))
        if s2.epochs == 0:
            _save_best(paths, self.controller, self.model_config, self.layout, "stage1", self.results["stage1"], paths["stage1"])
        else:
            if paths["stage2"].exists():
                self.best = load_checkpoint(paths["stage2"])["extra"].get("best")
            self.results["stage2"] = self._stage(_Stage("stage2", "controller", self.controller, self.model_config,
                                                        self.objectives.stage2, evaluate_controller, s2.epochs,
                                                        s2.max_minutes, s2.lr, s2.grad_clip, paths["stage2"],
                                                        on_epoch=self._keep_best, ema_decay=s2.ema_decay))
        best = load_checkpoint(paths["best"])
        self.results["best"] = {"stage": best["stage"], "epoch": best["epoch"], **best["metrics"]}
        self.run.log(f"[best] {paths['best']}: {best['stage']} epoch {best['epoch'] + 1}, valid {_brief(best['metrics'])}")

    def train_masknet(self) -> None:
        m = self.config.masknet
        if not (m.enabled and m.epochs > 0):
            return
        torch.manual_seed(self.config.seed + 1)
        masknet = MaskNet(self.layout, hidden=m.hidden, gru_layers=m.gru_layers).to(self.device)
        self.results["masknet"] = self._stage(_Stage("masknet", "masknet", masknet, dict(masknet.config),
                                                     self.objectives.masknet_step(masknet),
                                                     lambda: evaluate_model(masknet, self.valid, self.device), m.epochs,
                                                     m.max_minutes, m.lr, m.grad_clip, self.paths["masknet"],
                                                     ema_decay=m.ema_decay))

    def finish(self) -> dict:
        results, run = self.results, self.run
        results["time_limited"] = any(bool(results.get(s, {}).get("time_limited")) for s in ("stage1", "stage2", "masknet"))
        results["timings"] = {"this_invocation_s": time.perf_counter() - self.wall, "stages_this_invocation_s": self.stage_times,
                              "stage_elapsed_s": self.elapsed, "torch_threads": torch.get_num_threads(),
                              "device": str(self.device)}
        results["checkpoints"] = {k: str(v) for k, v in self.paths.items() if v.exists()}
        write_json(run.dir / "results.json", results)
        run.append_metrics({"event": "done", "best": results["best"]["score"], "time_limited": results["time_limited"]})
        summary = [f"blind DSP {_brief(results['baseline_blind_dsp'])}", f"controller {_brief(results['best'])}"]
        if "masknet" in results:
            summary.append(f"masknet {_brief(results['masknet'])}")
        run.log("done: " + " | ".join(summary))
        run.log("time per stage (all invocations): " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in self.elapsed.items())
                + f"; this invocation {results['timings']['this_invocation_s'] / 60:.1f} min")
        return results


def _train(config: TrainConfig, run_dir: Path, index: ExampleIndex, device: torch.device, hooks: dict, log) -> dict:
    trainer = _Trainer(config, run_dir, index, device, hooks, log)
    trainer.baseline()
    trainer.train_controller()
    trainer.train_masknet()
    return trainer.finish()


def _save_best(paths, controller, model_config, layout, stage, metrics, source: Path) -> None:
    """best.pt when stage 2 does not run: the stage-1 controller (or the untrained one)."""
    ckpt = load_checkpoint(source) if source.exists() else None
    save_checkpoint(paths["best"], kind="controller", model_config=model_config, layout=layout,
                    state_dict=controller.state_dict(), stage=stage, epoch=ckpt["epoch"] if ckpt else -1, step=0,
                    metrics=ckpt["metrics"] if ckpt else {k: v for k, v in metrics.items() if k not in ("epochs_done", "time_limited")},
                    extra={"selected_by": "stage 2 disabled: last stage-1 epoch"})

