"""Running the studies: closed form (in parallel), trained (resumable), and writing the outputs.

Closed form: every configuration is solved once and all its probes read from that one solution
(:func:`lamproof.studies.evaluate.closed_form_row`); configurations are spread over worker
processes, each with single-threaded BLAS (the matrices are small: threads only contend).

Dynamics: population Adam (:mod:`lamproof.numeric.dynamics`) from the trainer's initial point for
the paper's step count; configurations that share a system run as one batch, batches spread over
worker processes; a finished batch leaves its rows in the checkpoint folder, so a rerun skips it.

Trained: each configuration is trained with :class:`lamproof.numeric.trainer.Trainer` for the
paper's step count, in chunks; after every chunk its state goes to a checkpoint file in
``OUT/.lamproof-checkpoints/<study>/``, and a finished configuration leaves its row there. A
rerun skips finished configurations and resumes a partial one from its state, so an interrupted
sweep loses at most one chunk.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

from lamproof._blas import single_threaded_blas
from lamproof.errors import InputError
from lamproof.studies import outputs
from lamproof.studies.definitions import Config, Study, select
from lamproof.studies.evaluate import closed_form_task, result_columns, score_parameters

MODES = ("closed-form", "trained", "dynamics", "both")

#: Dynamics mode: at most this many configurations (sorted by d_z) share one batched run; more
#: would pad small latents to large ones and leave the pool's two workers unevenly loaded.
DYNAMICS_BATCH = 8

#: The authors' cost of one §4.2 configuration (10 000 steps plus its probes, 2 cores).
AUTHORS_SECONDS_PER_CONFIG = 94.0

#: Below this many configurations a process pool costs more to start than it saves.
PARALLEL_MIN_TASKS = 24

#: Trained mode writes a checkpoint after every this many steps (at most).
CHECKPOINT_EVERY = 1000

CHECKPOINT_DIR = ".lamproof-checkpoints"

_SINGLE_THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass
class StudyResult:
    study: Study
    mode: str  # "closed-form" | "trained"
    frame: pd.DataFrame
    seconds: float  # wall time of the sweep
    config_seconds: list[float] = field(default_factory=list)  # compute time of each configuration

    @property
    def per_config(self) -> float:
        return self.seconds / max(1, len(self.frame))


# -- closed form ----------------------------------------------------------------------------------
_evaluate_task = closed_form_task  # the workers import lamproof.studies.evaluate only


@contextmanager
def _environment(changes: dict):
    saved = {k: os.environ.get(k) for k in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@contextmanager
def worker_pool(
    workers: int | None = None, tasks: int = PARALLEL_MIN_TASKS, *, min_tasks: int = PARALLEL_MIN_TASKS
):
    """A process pool of single-threaded-BLAS workers, or ``None`` when one process is better
    (fewer than ``min_tasks`` tasks)."""
    workers = default_workers() if workers is None else workers
    if workers <= 1 or tasks < min_tasks:
        yield None
        return
    # spawn: fresh interpreters that read the single-thread BLAS settings when numpy loads.
    with _environment(_SINGLE_THREAD_ENV):
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            try:
                yield pool
            except BaseException:
                # Ctrl-C or an error: the pool would otherwise run every queued task (a trained
                # group is minutes) before the exception gets out. Checkpoints are written
                # atomically, so stopping the workers mid-step loses at most the current chunk.
                processes = list((getattr(pool, "_processes", None) or {}).values())  # shutdown forgets them
                pool.shutdown(wait=False, cancel_futures=True)
                for process in processes:
                    process.terminate()
                raise


def run_closed_form(studies: list[Study], *, workers: int | None = None, pool=None) -> list[StudyResult]:
    """The exact optimum of every configuration of ``studies``, one :class:`StudyResult` each."""
    return list(iter_closed_form(studies, workers=workers, pool=pool))


def iter_closed_form(studies: list[Study], *, workers: int | None = None, pool=None) -> Iterator[StudyResult]:
    """:func:`run_closed_form` one study at a time, each as soon as its configurations are done,
    so that the caller writes (and draws) a study while the workers compute the next ones."""
    # each study's configurations with the same data next to each other, so that a worker's chunk
    # shares their transition (moments, eigendecomposition) instead of rebuilding it
    # (evaluate.shared_transition); the studies stay in their order, so each one's results arrive together
    orders, tasks = [], []
    for study in studies:
        configs = study.configs()
        order = sorted(range(len(configs)), key=lambda i, c=configs, s=study: (_share_key(s, c[i]), i))
        orders.append(order)
        tasks += [(study, configs[i]) for i in order]
    if pool is None:
        with worker_pool(workers, len(tasks)) as own_pool:
            if own_pool is not None:
                yield from iter_closed_form(studies, pool=own_pool)
                return
            with single_threaded_blas():
                yield from _by_study(studies, orders, map(_evaluate_task, tasks))
        return
    chunk = max(1, len(tasks) // (8 * default_workers()))
    yield from _by_study(studies, orders, pool.map(_evaluate_task, tasks, chunksize=chunk))


def _by_study(
    studies: list[Study], orders: list[list[int]], results: Iterator[tuple[dict, float]]
) -> Iterator[StudyResult]:
    """Cut the results (each study's configurations in its ``order``) into one :class:`StudyResult`
    per study, back in the study's configuration order. A study's wall time is the time from the
    previous study's last result to its own, not counting the caller's time in between."""
    since = time.perf_counter()
    for study, order in zip(studies, orders, strict=True):
        rows = [None] * len(order)
        for i in order:
            rows[i] = next(results)
        frame = pd.DataFrame([row for row, _ in rows], columns=result_columns(study, ranges=True))
        yield StudyResult(study, "closed-form", frame, time.perf_counter() - since, [s for _, s in rows])
        since = time.perf_counter()


def _share_key(study, config) -> str:
    """Equal for configurations whose data are the same (lamproof's own studies: sweep order)."""
    return repr(study.system_arguments(config)) if isinstance(study, Study) else ""


# -- trained --------------------------------------------------------------------------------------
class ProgressBar:
    """A plain-text progress bar on a stream: redrawn in place on a terminal; elsewhere a line per
    finished configuration and a heartbeat line while batches train. No dependency."""

    WIDTH = 24
    #: Off a terminal (a log file, CI) a line is written at most this often while configurations
    #: train, so that a run whose batches take minutes still shows that it moves.
    HEARTBEAT_SECONDS = 30.0

    def __init__(self, label: str, configs: int, stream: TextIO | None = None):
        self.label, self.configs = label, configs
        self.stream = sys.stderr if stream is None else stream
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()
        self.last = self.start if not self.tty else 0.0

    def update(
        self, config_index: int, step: int, steps: int, loss: float | None, *, force: bool = False
    ) -> None:
        """Configuration ``config_index`` (0-based) is at ``step`` of ``steps``."""
        done = (config_index + step / max(1, steps)) / max(1, self.configs)
        self.show(done, f"config {config_index + 1}/{self.configs}  step {step}/{steps}", loss, force=force)

    def show(self, done: float, detail: str, loss: float | None = None, *, force: bool = False) -> None:
        """``done`` (a fraction of all configurations) with a detail: redrawn in place at most every
        0.1 s on a terminal, a line every :attr:`HEARTBEAT_SECONDS` elsewhere."""
        now = time.perf_counter()
        if not force and now - self.last < (0.1 if self.tty else self.HEARTBEAT_SECONDS):
            return
        self.last = now
        loss_text = "" if loss is None or not math.isfinite(loss) else f"  loss {loss:.3e}"
        if not self.tty:
            elapsed = now - self.start
            self.stream.write(f"{self.label}: {100 * done:.1f}%  {detail}{loss_text} ({elapsed:.0f} s)\n")
            self.stream.flush()
            return
        filled = int(round(done * self.WIDTH))
        text = f"\r{self.label}  [{'#' * filled}{'-' * (self.WIDTH - filled)}] {100 * done:5.1f}%  {detail}{loss_text}"
        self.stream.write(text)
        self.stream.flush()

    def config_done(self, config_index: int, config: Config, *, resumed: str = "") -> None:
        if self.tty:
            self.update(config_index, 1, 1, None, force=True)
            if config_index + 1 == self.configs:
                self.stream.write("\n")
        else:
            elapsed = time.perf_counter() - self.start
            self.stream.write(
                f"{self.label}: config {config_index + 1}/{self.configs} {config.key} done"
                f"{resumed} ({elapsed:.0f} s)\n"
            )
        self.stream.flush()


@dataclass(frozen=True)
class TrainingSettings:
    """What a trained configuration depends on besides the configuration itself."""

    steps: int
    seed: int = 0
    batch_size: int = 128
    lr: float = 1e-3
    checkpoint_every: int = CHECKPOINT_EVERY

    def key(self, config: Config) -> str:
        return f"{config.key}_steps{self.steps}_bs{self.batch_size}_lr{self.lr:g}_tseed{self.seed}"


def _save_state(path: Path, state: dict, steps_done: int) -> None:
    arrays = {f"state__{k}": np.asarray(v) for k, v in state.items()}
    arrays["lamproof_steps_done"] = np.asarray(steps_done)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    outputs.write_atomic(path, write)


def _load_state(path: Path) -> tuple[dict, int]:
    with np.load(path, allow_pickle=False) as data:
        state = {k[len("state__") :]: data[k] for k in data.files if k.startswith("state__")}
        state = {k: (v.item() if v.ndim == 0 else v) for k, v in state.items()}
        return state, int(data["lamproof_steps_done"])


def _advance(trainers: list, steps: int, report: Callable[[int, float | None], None] | None) -> None:
    """``steps`` steps of every trainer: as one computation when the trainer class can batch
    (:func:`lamproof.numeric.trainer.train_together`), else one after the other."""
    together = getattr(type(trainers[0]), "train_together", None)
    if together is not None:
        together(
            trainers, steps, None if report is None else (lambda k, _total: report(k, trainers[0].last_loss))
        )
        return
    for trainer in trainers:
        trainer.run(steps, progress=None if report is None else (lambda k, _total, loss: report(k, loss)))


def train_group(
    study: Study,
    configs: list[Config],
    settings: TrainingSettings,
    folder: Path,
    *,
    progress: Callable[[int, int, float | None], None] | None = None,
    done: Callable[[Config, str], None] | None = None,
) -> list[tuple[dict, str]]:
    """Train configurations of one study together (those sharing a system share their minibatches),
    resuming each from ``folder`` if it holds its checkpoint; each one's row and how it ran.

    Every member checkpoints at the multiples of ``settings.checkpoint_every``; members that stand
    at different steps (an interrupted sweep) are first brought to the same step, so the result of
    each is that of training it alone. ``progress(step, total, loss)`` reports the slowest member;
    ``done(config, how)`` is called as each finishes.
    """
    from lamproof.numeric.trainer import Trainer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    results: dict[str, tuple[dict, str]] = {}
    active: list[tuple[Config, object, list]] = []  # config, trainer, [steps done]
    how: dict[str, str] = {}
    for config in configs:
        key = settings.key(config)
        finished, partial = folder / f"{key}.json", folder / f"{key}.npz"
        if finished.exists():
            results[config.key] = (json.loads(finished.read_text())["row"], " (already finished)")
            if done is not None:
                done(config, results[config.key][1])
            continue
        system, spec = study.system(config), study.spec(config)
        kwargs = {
            "seed": settings.seed,
            "batch_size": settings.batch_size,
            "lr": settings.lr,
            "labeled_fraction": study.labeled_fraction(config),
        }
        if partial.exists():
            state, steps_done = _load_state(partial)
            trainer = Trainer.from_state(system, spec, state, **kwargs)
            how[config.key] = f" (resumed at step {steps_done})"
        else:
            trainer, steps_done, how[config.key] = Trainer(system, spec, **kwargs), 0, ""
        active.append((config, trainer, [steps_done]))
    every = settings.checkpoint_every
    while active:
        low = min(entry[2][0] for entry in active)
        target = min(settings.steps, (low // every + 1) * every)
        movers = [entry for entry in active if entry[2][0] == low]
        report = None if progress is None else (lambda k, loss, o=low: progress(o + k, settings.steps, loss))
        _advance([trainer for _, trainer, _ in movers], target - low, report)
        for config, trainer, steps_done in movers:
            steps_done[0] = target
            _save_state(folder / f"{settings.key(config)}.npz", trainer.state(), target)
        for config, trainer, _ in [entry for entry in movers if entry[2][0] >= settings.steps]:
            key = settings.key(config)
            row = score_parameters(study, config, trainer.params, steps=settings.steps)
            outputs.write_text_atomic(folder / f"{key}.json", json.dumps({"key": key, "row": _jsonable(row)}))
            (folder / f"{key}.npz").unlink(missing_ok=True)
            results[config.key] = (row, how[config.key])
            if done is not None:
                done(config, how[config.key])
        active = [entry for entry in active if entry[2][0] < settings.steps]
    return [results[config.key] for config in configs]


def train_config(
    study: Study,
    config: Config,
    settings: TrainingSettings,
    folder: Path,
    *,
    progress: Callable[[int, int, float | None], None] | None = None,
) -> tuple[dict, str]:
    """Train one configuration (resuming from ``folder`` if it holds a checkpoint); its row and how it ran."""
    return train_group(study, [config], settings, folder, progress=progress)[0]


def _jsonable(row: dict) -> dict:
    out = {}
    for k, v in row.items():
        if isinstance(v, (np.floating, np.integer)):
            v = v.item()
        if isinstance(v, float) and math.isnan(v):
            v = None
        out[k] = v
    return out


def training_groups(study: Study, configs: list[Config]) -> list[list[Config]]:
    """The d_z sweeps of a study (configurations that differ only in ``dz``), each trained as one
    batch that sees the same minibatches.

    A sweep (at most 16 LAMs of d_o = 128) keeps its weights, Adam's moments and its work buffers
    in the shared cache; batching the sweeps of several augmentation scales or labeled fractions
    too would share the minibatch draws but stream four times the weights from memory every step
    (measured slower).
    """
    shared = [c for c in study.columns if c != "dz"]
    groups: dict[tuple, list[Config]] = {}
    for config in configs:
        groups.setdefault(tuple(config.get(c) for c in shared) + (config.seed,), []).append(config)
    return [sorted(members, key=lambda c: c["dz"]) for members in groups.values()]


#: A worker reports its group's step to the lead process at most this often (seconds).
WORKER_REPORT_SECONDS = 1.0


def _trained_task(task, queue=None, task_id: int = 0) -> list[tuple[dict, str]]:
    """A worker's unit: one group of one study, single-threaded BLAS; its step goes to ``queue``
    (as ``(task_id, step, steps, loss)``) at most every :data:`WORKER_REPORT_SECONDS`."""
    study, configs, settings, folder = task
    progress = None
    if queue is not None:
        last = [0.0]

        def progress(step, steps, loss):
            now = time.perf_counter()
            if now - last[0] >= WORKER_REPORT_SECONDS or step == steps:
                last[0] = now
                queue.put((task_id, step, steps, loss))

    with single_threaded_blas():
        return train_group(study, configs, settings, folder, progress=progress)


def run_trained_studies(
    studies: list[Study],
    out_dir: Path,
    settings_of: Callable[[Study], TrainingSettings],
    *,
    stream: TextIO | None = None,
    workers: int | None = None,
    configs_of: Callable[[Study], list[Config]] | None = None,
) -> list[StudyResult]:
    """Train every configuration of ``studies`` (or ``configs_of(study)``; resumably, checkpoints in
    ``out_dir``), groups of configurations sharing a system as one batch each, groups spread over
    worker processes (largest first)."""
    configs_of = (lambda study: study.configs()) if configs_of is None else configs_of
    tasks = []
    for study in studies:
        folder = Path(out_dir) / CHECKPOINT_DIR / study.slug
        folder.mkdir(parents=True, exist_ok=True)
        settings = settings_of(study)
        tasks += [(study, group, settings, folder) for group in training_groups(study, configs_of(study))]
    order = sorted(range(len(tasks)), key=lambda i: -len(tasks[i][1]) * tasks[i][2].steps)
    configs_total = sum(len(t[1]) for t in tasks)
    label = "trained (" + ", ".join(f"§{s.name}" for s in studies) + ")"
    bar = ProgressBar(label, configs_total, stream)
    finished = {"count": 0}

    def done(config: Config, how: str) -> None:
        bar.config_done(finished["count"], config, resumed=how)
        finished["count"] += 1

    results: dict[int, tuple[list, float]] = {}
    start = time.perf_counter()
    with worker_pool(workers, len(tasks), min_tasks=2) as pool:  # each task is minutes of work
        if pool is None:
            for i in order:
                study, group, settings, folder = tasks[i]
                t0 = time.perf_counter()
                offset = finished["count"]
                with single_threaded_blas():
                    rows = train_group(
                        study,
                        group,
                        settings,
                        folder,
                        done=done,
                        progress=lambda step, total, loss, o=offset: bar.update(o, step, total, loss),
                    )
                results[i] = (rows, time.perf_counter() - t0)
        else:
            from concurrent.futures import FIRST_COMPLETED, wait
            from queue import Empty

            with multiprocessing.get_context("spawn").Manager() as manager:
                queue = manager.Queue()
                futures = {pool.submit(_trained_task, tasks[i], queue, i): i for i in order}
                submitted = time.perf_counter()
                running: dict[int, tuple[float, float | None]] = {}  # task → (fraction of its steps, loss)
                pending = set(futures)
                while pending:
                    finished_now, pending = wait(
                        pending, timeout=WORKER_REPORT_SECONDS, return_when=FIRST_COMPLETED
                    )
                    while True:
                        try:
                            i, step, steps, loss = queue.get_nowait()
                        except Empty:
                            break
                        if i not in results:
                            running[i] = (step / max(1, steps), loss)
                    for future in finished_now:
                        i = futures[future]
                        rows = future.result()
                        results[i] = (rows, time.perf_counter() - submitted)
                        running.pop(i, None)
                        for config, (_, how) in zip(tasks[i][1], rows, strict=True):
                            done(config, how)
                    if running:
                        partial = sum(len(tasks[i][1]) * fraction for i, (fraction, _) in running.items())
                        losses = [loss for _, loss in running.values() if loss is not None]
                        bar.show(
                            (finished["count"] + partial) / max(1, configs_total),
                            f"{finished['count']}/{configs_total} configs done, {len(running)} batches training",
                            losses[0] if losses else None,
                        )
    elapsed = time.perf_counter() - start
    out = []
    total_work = sum(len(t[1]) * t[2].steps for t in tasks) or 1
    for study in studies:
        indices = [i for i, t in enumerate(tasks) if t[0] is study]
        by_key = {
            config.key: row
            for i in indices
            for config, (row, _) in zip(tasks[i][1], results[i][0], strict=True)
        }
        frame = pd.DataFrame(
            [by_key[c.key] for c in configs_of(study)], columns=result_columns(study, ranges=False)
        )
        frame["iter"] = frame["iter"].astype("Int64")
        share = sum(len(tasks[i][1]) * tasks[i][2].steps for i in indices) / total_work
        out.append(StudyResult(study, "trained", frame, elapsed * share, [results[i][1] for i in indices]))
    return out


def run_trained(
    study: Study,
    out_dir: Path,
    settings: TrainingSettings,
    *,
    stream: TextIO | None = None,
    configs: list[Config] | None = None,
    workers: int | None = None,
) -> StudyResult:
    """Train every configuration of ``study`` (resumably, checkpoints in ``out_dir``)."""
    chosen = study.configs() if configs is None else list(configs)
    return run_trained_studies(
        [study], out_dir, lambda _s: settings, stream=stream, workers=workers, configs_of=lambda _s: chosen
    )[0]


# -- dynamics -------------------------------------------------------------------------------------
def _dynamics_key(configs: list[Config], settings) -> str:
    return (
        f"{configs[0].key}..{configs[-1].key}_{settings.optimizer}_steps{settings.steps}_lr{settings.lr:g}"
        f"_tseed{settings.seed}"
    )


def run_dynamics(
    studies: list[Study],
    out_dir: Path,
    *,
    steps: int | None = None,
    workers: int | None = None,
    stream: TextIO | None = None,
    optimizer: str = "adam",
    lr: float = 1e-3,
    seed: int = 0,
) -> list[StudyResult]:
    """Population dynamics of every configuration of ``studies`` at the paper's step counts (or ``steps``)."""
    from lamproof.numeric.dynamics import DynamicsSettings
    from lamproof.studies.evaluate import dynamics_groups, dynamics_task

    tasks, places = [], []
    for study in studies:
        settings = DynamicsSettings(optimizer, lr=lr, steps=steps or study.steps, seed=seed, record=None)
        folder = Path(out_dir) / CHECKPOINT_DIR / study.slug
        folder.mkdir(parents=True, exist_ok=True)
        for group in dynamics_groups(study, study.configs(), DYNAMICS_BATCH):
            tasks.append((study, group, settings))
            places.append(folder / f"dynamics_{_dynamics_key(group, settings)}.json")
    total_steps = sum(len(t[1]) * t[2].steps for t in tasks) or 1
    label = "dynamics (" + ", ".join(f"§{s.name}" for s in studies) + ")"
    bar = ProgressBar(label, len(tasks), stream)
    results: dict[int, tuple[list[dict], float]] = {}
    start = time.perf_counter()
    done_steps = 0

    def finished(i: int, rows: list[dict], seconds: float, how: str = "") -> None:
        nonlocal done_steps
        results[i] = (rows, seconds)
        done_steps += len(tasks[i][1]) * tasks[i][2].steps
        bar.config_done(len(results) - 1, tasks[i][1][0], resumed=how)

    pending = []
    for i, path in enumerate(places):
        if path.exists():
            saved = json.loads(path.read_text())
            finished(i, saved["rows"], saved["seconds"], " (already finished)")
        else:
            pending.append(i)
    with worker_pool(workers, len(pending), min_tasks=2) as pool:  # each task is seconds of work
        if pool is None:
            for i in pending:
                with single_threaded_blas():
                    rows, seconds = dynamics_task(tasks[i])
                outputs.write_text_atomic(
                    places[i], json.dumps({"rows": [_jsonable(r) for r in rows], "seconds": seconds})
                )
                finished(i, rows, seconds)
        else:
            # largest first (a step costs about a + b·d_z per member), so the workers finish together
            pending.sort(key=lambda i: -tasks[i][2].steps * sum(4 + c["dz"] for c in tasks[i][1]))
            futures = {pool.submit(dynamics_task, tasks[i]): i for i in pending}
            from concurrent.futures import as_completed

            for future in as_completed(futures):
                i = futures[future]
                rows, seconds = future.result()
                outputs.write_text_atomic(
                    places[i], json.dumps({"rows": [_jsonable(r) for r in rows], "seconds": seconds})
                )
                finished(i, rows, seconds)
    elapsed = time.perf_counter() - start
    out = []
    for study in studies:
        indices = [i for i, t in enumerate(tasks) if t[0] is study]
        by_key = {}
        for i in indices:
            for config, row in zip(tasks[i][1], results[i][0], strict=True):
                by_key[config.key] = row
        rows = [by_key[c.key] for c in study.configs()]
        seconds = [results[i][1] for i in indices]
        frame = pd.DataFrame(rows, columns=result_columns(study, ranges=False))
        frame["iter"] = frame["iter"].astype("Int64")
        share = sum(len(tasks[i][1]) * tasks[i][2].steps for i in indices) / total_steps
        out.append(StudyResult(study, "dynamics", frame, elapsed * share, seconds))
    return out


# -- outputs --------------------------------------------------------------------------------------
def output_paths(study: Study, mode: str, out_dir: Path, *, plot: bool) -> dict[str, Path]:
    """The files ``reproduce`` writes for one study and mode."""
    out_dir = Path(out_dir)
    suffix = {"closed-form": "", "trained": "_trained", "dynamics": "_dynamics"}[mode]
    paths = {"csv": out_dir / f"{study.slug}{suffix}.csv", "tex": out_dir / f"{study.slug}{suffix}.tex"}
    if plot:
        paths["png"] = out_dir / f"{study.slug}{suffix}.png"
    return paths


def prepare_out_dir(out_dir: Path) -> Path:
    """Create ``out_dir`` if needed and check that files can be created in it."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe_file = out_dir / f".lamproof-write-test-{os.getpid()}"
        probe_file.write_text("")
        probe_file.unlink()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise InputError(f"--out: cannot write to {str(out_dir)!r} ({reason})") from None
    return out_dir


def write_study(
    result: StudyResult, out_dir: Path, *, plot: bool, closed: pd.DataFrame | None = None
) -> list[Path]:
    """Write the CSV and the LaTeX table, and the figure too if ``plot``; return the paths."""
    study, frame = result.study, result.frame
    paths = output_paths(study, result.mode, out_dir, plot=plot)
    outputs.write_csv(frame, paths["csv"])
    suffix = {"trained": " (trained)", "dynamics": " (population Adam)"}.get(result.mode, " (closed form)")
    outputs.write_text_atomic(paths["tex"], outputs.latex_table(study, frame, caption_suffix=suffix))
    if plot:
        if result.mode == "closed-form":
            outputs.write_figure(study, paths["png"], frame, None)
        else:
            outputs.write_figure(study, paths["png"], closed, frame, kind=result.mode)
    return list(paths.values())


@dataclass
class ReproduceReport:
    results: list[StudyResult]
    written: list[Path]
    notices: list[str]

    def summary(self) -> str:
        lines = [
            f"{'study':6s} {'mode':12s} {'configs':>7s} {'seconds':>8s} {'ms/config':>10s} "
            f"{'vs 94 s/config':>15s}"
        ]
        for r in self.results:
            per = r.per_config
            ratio = AUTHORS_SECONDS_PER_CONFIG / per if per > 0 else math.inf
            lines.append(
                f"{_label(r.study):6s} {r.mode:12s} {len(r.frame):7d} {r.seconds:8.2f} {1e3 * per:10.2f} "
                f"{ratio:14.0f}x"
            )
        lines += [f"wrote {p}" for p in self.written]
        return "\n".join(lines)


def _label(study) -> str:
    """``§4.1`` for the paper's studies, the bare name for lamproof's own (``exo``)."""
    return f"§{study.name}" if isinstance(study, Study) else study.name


def _supports(study, mode: str) -> bool:
    """Whether ``study`` runs in ``mode``: lamproof's own studies are closed form only."""
    return mode in getattr(study, "modes", MODES)


def reproduce(
    study: str,
    *,
    out: str | Path = "out",
    mode: str = "closed-form",
    force: bool = False,
    steps: int | None = None,
    plot: bool = True,
    stream: TextIO | None = None,
    workers: int | None = None,
    settings: TrainingSettings | None = None,
    only: dict | None = None,
) -> ReproduceReport:
    """``lamproof reproduce``: run the study (or ``all``) and write its outputs into ``out``.

    ``only`` (``{column: value or values}``) restricts the sweep to those configurations
    (:func:`lamproof.studies.definitions.select`), e.g. one trained configuration to inspect.

    Raises ``ValueError`` (one line) for an unknown study or mode, an unwritable ``out``, or
    existing outputs without ``force`` — before computing anything.
    """
    with single_threaded_blas():
        return _reproduce(
            study,
            out=out,
            mode=mode,
            force=force,
            steps=steps,
            plot=plot,
            stream=stream,
            workers=workers,
            settings=settings,
            only=only,
        )


def _reproduce(study, *, out, mode, force, steps, plot, stream, workers, settings, only) -> ReproduceReport:
    stream = sys.stderr if stream is None else stream
    studies = select(study, only)
    if mode not in MODES:
        raise InputError(f"mode: must be one of {', '.join(MODES)}, got {mode!r}")
    modes = ["closed-form", "trained"] if mode == "both" else [mode]
    notices = []
    for m in modes:
        if not any(_supports(s, m) for s in studies):
            raise InputError(
                f"mode: study {study} has a closed form only (no training protocol to reproduce); "
                "use --mode closed-form"
            )
        notices += [
            f"{_label(s)}: closed form only, --mode {m} skips it" for s in studies if not _supports(s, m)
        ]
    if plot and not outputs.have_matplotlib():
        notices.append("matplotlib is not installed: figures skipped (pip install 'lamproof[plot]')")
        plot = False
    out_dir = prepare_out_dir(Path(out))
    if not force:
        for s in studies:
            for m in (m for m in modes if _supports(s, m)):
                for path in output_paths(s, m, out_dir, plot=plot).values():
                    if path.exists():
                        raise InputError(f"--out: {str(path)!r} exists (use --force to overwrite)")
    for notice in notices:
        print(f"lamproof: {notice}", file=stream)
    results, written = [], []
    closed_by_name: dict[str, pd.DataFrame] = {}
    # the closed form is cheap: trained-mode figures draw it too
    closed = [s for s in studies if "closed-form" in modes or any(_supports(s, m) for m in modes)]
    if "closed-form" in modes or plot:
        tasks = sum(len(s.configs()) for s in closed)
        with worker_pool(workers, tasks) as pool:
            # each study is written and drawn here as soon as its results are in, while the
            # workers compute the next studies
            for r in iter_closed_form(closed, workers=workers, pool=pool):
                closed_by_name[r.study.name] = r.frame
                if "closed-form" in modes:
                    results.append(r)
                    files = write_study(r, out_dir, plot=plot)
                    written += files
    if "dynamics" in modes:
        for r in run_dynamics(
            [s for s in studies if _supports(s, "dynamics")],
            out_dir,
            steps=steps,
            workers=workers,
            stream=stream,
        ):
            results.append(r)
            files = write_study(r, out_dir, plot=plot, closed=closed_by_name.get(r.study.name))
            written += files
    if "trained" in modes:

        def settings_of(s: Study) -> TrainingSettings:
            chosen = settings or TrainingSettings(steps=steps or s.steps)
            if settings is not None and steps is not None:
                chosen = TrainingSettings(
                    steps, settings.seed, settings.batch_size, settings.lr, settings.checkpoint_every
                )
            return chosen

        trainable = [s for s in studies if _supports(s, "trained")]
        for r in run_trained_studies(trainable, out_dir, settings_of, stream=stream, workers=workers):
            results.append(r)
            files = write_study(r, out_dir, plot=plot, closed=closed_by_name.get(r.study.name))
            written += files
    return ReproduceReport(results, written, notices)
